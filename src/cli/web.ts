// supra web [--model <dir>] [--teacher <dir>] [--port N]: the browser playground (web/, served by
// serve/playground.ts) on 127.0.0.1, with the SUPRA model and its softmax teacher.
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { intOption, optionsHelp, parse, UsageError, type OptionSpecs } from './args.js';
import { linearizeFolder } from '../models/linearize.js';
import { FINAL_DIR } from '../train/checkpoint.js';
import { EMBEDDED_TEACHER_DIR } from '../models/embedded.js';
import { startWebServer, type WebModel } from '../serve/playground.js';

export const WEB_OPTIONS = {
  model: { type: 'string', value: 'DIR', help: 'the SUPRA model to offer (default: runs/demo/final when `npm start` wrote it, else the\nembedded teacher linearized, not uptrained, into runs/web/supra)' },
  teacher: { type: 'string', value: 'DIR', help: 'the softmax teacher to run beside it (default: the embedded teacher, assets/teacher)' },
  port: { type: 'string', value: 'N', help: 'port on 127.0.0.1 (default 8090; 0 picks a free port)' },
} as const satisfies OptionSpecs;

/**
 * The models the page offers: the SUPRA model and the softmax teacher beside it. Without --model: the
 * model `npm start` uptrained (runs/demo/final), else the embedded teacher linearized (not uptrained)
 * into runs/web/supra, which works offline from a fresh clone in a second.
 */
export function webModels(options: { model?: string; teacher?: string }): WebModel[] {
  let supra: WebModel;
  const demo = resolve('runs', 'demo', FINAL_DIR); // where `npm start` (supra demo) writes, from the working folder
  if (options.model) supra = { name: 'supra', dir: resolve(options.model), role: 'supra', note: resolve(options.model) };
  else if (existsSync(join(demo, 'config.json'))) supra = { name: 'supra', dir: demo, role: 'supra', note: 'uptrained by npm start' };
  else supra = { name: 'supra', dir: linearizedTeacher(), role: 'supra', note: 'linearized, not uptrained (npm start makes the uptrained one)' };
  const teacherDir = options.teacher ? resolve(options.teacher) : EMBEDDED_TEACHER_DIR;
  return [supra, { name: 'teacher', dir: teacherDir, role: 'teacher', note: options.teacher ? teacherDir : 'the embedded softmax teacher' }];
}

/** The embedded teacher linearized into runs/web/supra, made again when the teacher is newer. */
function linearizedTeacher(): string {
  const dir = resolve('runs', 'web', 'supra');
  const made = join(dir, 'model.safetensors');
  if (!existsSync(made) || statSync(made).mtimeMs < statSync(join(EMBEDDED_TEACHER_DIR, 'model.safetensors')).mtimeMs) {
    linearizeFolder(EMBEDDED_TEACHER_DIR, dir, { seed: 0 });
  }
  return dir;
}

export const command = {
  summary: 'the browser playground: SUPRA and its teacher in a page, served on 127.0.0.1',
  usage: ['supra web [--model <dir>] [--teacher <dir>] [--port N]', '', optionsHelp(WEB_OPTIONS)].join('\n'),
  options: WEB_OPTIONS,
  async run(argv: string[]): Promise<void> {
    const { values, positionals } = parse(argv, WEB_OPTIONS, 'web');
    if (positionals.length > 0) throw new UsageError(`web takes no positional arguments (got "${positionals[0]}")`);
    const port = intOption(values.port, 'port', 8090, 0);
    if (port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`);
    for (const [flag, dir] of [['--model', values.model], ['--teacher', values.teacher]] as const) {
      if (dir === undefined) continue;
      if (!existsSync(dir)) throw new UsageError(`${flag} ${dir}: no such folder`);
      if (!statSync(dir).isDirectory()) throw new UsageError(`${flag} ${dir}: a file, not a model folder (give the folder that holds it: ${dirname(resolve(dir))})`);
      if (!existsSync(join(dir, 'config.json'))) throw new UsageError(`${flag} ${dir}: no config.json there (expected a model folder)`);
    }
    const models = webModels(values);
    const server = await startWebServer(models, port).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') throw new UsageError(`port ${port} on 127.0.0.1 is in use; choose another with --port (0 picks a free one)`);
      throw e;
    });
    const address = server.address();
    const actual = typeof address === 'object' && address ? address.port : port;
    console.log(`supra web: http://127.0.0.1:${actual}/  (${models.map((m) => `${m.name}: ${m.dir}`).join(', ')}; Ctrl-C stops)`);
  },
};
