// A command in a child process, sent SIGINT once its stdout matches a pattern (tests of Ctrl-C).
import { spawn } from 'node:child_process';

export interface Interrupted {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `node args…`, send SIGINT when stdout first matches `when`; SIGKILL after `timeoutMs` as a backstop. */
export async function interruptWhen(args: string[], when: RegExp, env: NodeJS.ProcessEnv = process.env, timeoutMs = 60_000): Promise<Interrupted> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '', stderr = '', sent = false;
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (!sent && when.test(stdout)) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}
