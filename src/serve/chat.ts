// The tokenizer's Jinja chat template (tokenizer_config.json's chat_template or chat_template.jinja),
// rendered with @huggingface/jinja the way transformers' apply_chat_template does: messages,
// add_generation_prompt and the special tokens as strings. The rendered text already holds BOS when the
// template writes it, so it is encoded without adding special tokens.
//
// A template is code that comes with a downloaded model, so it never runs on the server's event loop: it
// renders in a child process (chat-renderer.ts) under a heap limit, with a time limit per rendering and a
// bound on the text it may produce. The child stays up between requests (renderings are queued, one at a
// time, each taking well under a millisecond for real templates); a rendering past a limit kills it, fails
// that request with a 500 naming the problem, and a fresh one starts for the next requests.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Template } from '@huggingface/jinja';
import type { LoadedTokenizer } from '../io/tokenizer.js';
import { ApiError } from './errors.js';
import type { ChatMessage } from './request.js';

export interface ChatTemplateLimits {
  /** Longest one rendering may take (queueing and the renderer's start not counted). Default 2000 ms. */
  timeoutMs?: number;
  /** Heap of the rendering process in MB (its V8 old space). Default 256. */
  maxHeapMb?: number;
  /** Longest rendered prompt in characters. Default 4 Mi. */
  maxOutputChars?: number;
}

export const DEFAULT_CHAT_TEMPLATE_LIMITS: Required<ChatTemplateLimits> = { timeoutMs: 2000, maxHeapMb: 256, maxOutputChars: 4 << 20 };

/** Parent → renderer. */
export type RendererRequest =
  | { kind: 'setup'; source: string; specials: Record<string, string | null>; maxOutputChars: number }
  | { kind: 'render'; messages: ChatMessage[]; addGenerationPrompt: boolean };

/** Renderer → parent. */
export type RendererReply =
  | { kind: 'ready' }
  | { kind: 'text'; text: string }
  /** The template called raise_exception: it refuses these messages (the client's error). */
  | { kind: 'rejected'; message: string }
  /** The template itself failed (a bug in it, or a string past the engine's limit): the server's error. */
  | { kind: 'failed'; message: string }
  /** Output past maxOutputChars; length null: past what the JS engine can hold in one string. */
  | { kind: 'too_long'; length: number | null };

interface Job {
  request: RendererRequest & { kind: 'render' };
  signal: AbortSignal;
  resolve(text: string): void;
  reject(e: unknown): void;
  onAbort(): void;
}

const RENDERER = fileURLToPath(new URL('./chat-renderer.js', import.meta.url));
const TEMPLATE_SOURCE = "the model's chat template (tokenizer_config.json's chat_template or chat_template.jinja)";

export class ChatTemplate {
  readonly limits: Required<ChatTemplateLimits>;
  private readonly source: string;
  private readonly specials: Record<string, string | null>;
  private readonly queue: Job[] = [];
  private current: Job | null = null;
  private timer: NodeJS.Timeout | undefined;
  private child: ChildProcess | null = null;
  private childReady = false;
  private stderrTail = '';
  private closed = false;

  constructor(source: string, readonly tokenizer: LoadedTokenizer, limits: ChatTemplateLimits = {}) {
    // parsed here too, so a template that does not parse stops the server at start-up
    try {
      new Template(source);
    } catch (e) {
      throw new Error(`supra: ${tokenizer.chat_template_file ?? "the tokenizer's chat_template"}: the chat template does not parse: ${(e as Error).message}`);
    }
    this.limits = { ...DEFAULT_CHAT_TEMPLATE_LIMITS, ...limits };
    const { timeoutMs, maxHeapMb, maxOutputChars } = this.limits;
    if (!(timeoutMs > 0)) throw new Error(`supra: chat template timeoutMs must be > 0, got ${timeoutMs}`);
    if (!Number.isInteger(maxHeapMb) || maxHeapMb < 16) throw new Error(`supra: chat template maxHeapMb must be an integer ≥ 16, got ${maxHeapMb}`);
    if (!Number.isInteger(maxOutputChars) || maxOutputChars < 1) throw new Error(`supra: chat template maxOutputChars must be an integer ≥ 1, got ${maxOutputChars}`);
    this.source = source;
    const name = (id: number | null) => (id === null ? null : tokenizer.idToToken(id));
    this.specials = {
      bos_token: name(tokenizer.bos_token_id),
      eos_token: name(tokenizer.eos_token_id),
      pad_token: name(tokenizer.pad_token_id),
      unk_token: name(tokenizer.unk_token_id),
    };
    // started now, so the first request does not wait for it
    this.start();
  }

  /**
   * The prompt text for these messages. The template's raise_exception (e.g. on a bad role order) is a 400;
   * a template that fails on its own or passes its time, memory or output limit is a 500; an aborted signal
   * rejects with its reason.
   */
  render(messages: readonly ChatMessage[], signal: AbortSignal, addGenerationPrompt = true): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      if (this.closed) throw new ApiError(503, 'The server is shutting down.', 'server_error', null, 'server_shutting_down');
      signal.throwIfAborted();
      const job: Job = {
        request: { kind: 'render', messages: messages.map((m) => ({ ...m })), addGenerationPrompt },
        signal,
        resolve,
        reject,
        onAbort: () => {
          if (this.current === job) this.kill(signal.reason);
          else {
            this.queue.splice(this.queue.indexOf(job), 1);
            this.settle(job, signal.reason);
          }
        },
      };
      signal.addEventListener('abort', job.onAbort, { once: true });
      this.queue.push(job);
      this.pump();
    });
  }

  /** Token ids of the rendered prompt. */
  async encode(messages: readonly ChatMessage[], signal: AbortSignal): Promise<number[]> {
    return this.tokenizer.encode(await this.render(messages, signal), { add_special_tokens: false });
  }

  /** Stop the renderer; queued renderings fail with 503. */
  close(): void {
    this.closed = true;
    const down = new ApiError(503, 'The server is shutting down.', 'server_error', null, 'server_shutting_down');
    for (const job of this.queue.splice(0)) this.settle(job, down);
    if (this.child || this.current) this.kill(down);
  }

  /** Send the next queued job to the renderer, starting one when there is none. */
  private pump(): void {
    this.keepAlive();
    if (this.current || this.closed || this.queue.length === 0) return;
    if (!this.child) this.start();
    if (!this.childReady) return; // the 'ready' message pumps again
    const job = this.queue.shift()!;
    this.current = job;
    this.timer = setTimeout(() => {
      this.kill(new ApiError(500, `${TEMPLATE_SOURCE} did not finish rendering within ${this.limits.timeoutMs} ms, so it was stopped; the template loops too long or for ever.`, 'server_error', null, 'chat_template_timeout'));
    }, this.limits.timeoutMs);
    this.child!.send(job.request);
  }

  private start(): void {
    const child = fork(RENDERER, [], {
      execArgv: [`--max-old-space-size=${this.limits.maxHeapMb}`],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'json',
    });
    this.child = child;
    this.childReady = false;
    this.stderrTail = '';
    child.stderr!.on('data', (c: Buffer) => {
      if (child === this.child) this.stderrTail = (this.stderrTail + c.toString()).slice(-4096);
    });
    child.on('message', (m: RendererReply) => this.onReply(child, m));
    // 'close' rather than 'exit': it comes after stderr is read to the end (which says whether the heap ran out)
    child.on('close', (code, signal) => this.onExit(child, code, signal));
    child.on('error', () => this.onExit(child, null, null));
    child.send({ kind: 'setup', source: this.source, specials: this.specials, maxOutputChars: this.limits.maxOutputChars } satisfies RendererRequest);
    child.unref();
    (child.stderr as unknown as { unref?: () => void }).unref?.();
    this.keepAlive();
  }

  /** The renderer's channel keeps the process alive while a rendering is running or waiting, not when idle. */
  private keepAlive(): void {
    const channel = this.child?.channel;
    if (!channel) return;
    if (this.current || this.queue.length > 0) channel.ref();
    else channel.unref();
  }

  private onReply(child: ChildProcess, m: RendererReply): void {
    if (child !== this.child) return;
    if (m.kind === 'ready') {
      this.childReady = true;
      this.pump();
      return;
    }
    const job = this.current;
    if (!job) return;
    clearTimeout(this.timer);
    this.current = null;
    if (m.kind === 'text') this.settle(job, null, m.text);
    else if (m.kind === 'rejected') {
      this.settle(job, new ApiError(400, `The chat template rejected these messages: ${m.message}`, 'invalid_request_error', 'messages', 'chat_template_error'));
    } else if (m.kind === 'failed') {
      this.settle(job, new ApiError(500, `${TEMPLATE_SOURCE} failed while rendering: ${m.message}`, 'server_error', null, 'chat_template_error'));
    } else {
      this.settle(job, new ApiError(500, `${TEMPLATE_SOURCE} rendered ${m.length ?? 'more than the JavaScript engine can hold in one string of'} characters, more than the limit of ${this.limits.maxOutputChars}.`, 'server_error', null, 'chat_template_output_too_large'));
    }
    this.pump();
  }

  /** The renderer ended on its own: out of memory (past maxHeapMb) or a crash. */
  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child !== this.child) return;
    const outOfMemory = /heap out of memory|heap limit/i.test(this.stderrTail);
    const why = outOfMemory
      ? new ApiError(500, `${TEMPLATE_SOURCE} used more than ${this.limits.maxHeapMb} MB of memory while rendering, so it was stopped.`, 'server_error', null, 'chat_template_out_of_memory')
      : new ApiError(500, `The chat template renderer stopped unexpectedly (${signal ?? `exit code ${code}`}).`, 'server_error', null, 'chat_template_error');
    // a renderer that cannot even start would fail every job the same way (and must not be restarted in a loop)
    const starting = !this.childReady;
    if (starting) for (const job of this.queue.splice(0)) this.settle(job, why);
    this.kill(why, !starting);
  }

  /**
   * Kill the renderer (if any); the job it was running fails with `reason`; a fresh renderer starts (when
   * `restart`, or when jobs are waiting).
   */
  private kill(reason: unknown, restart = true): void {
    clearTimeout(this.timer);
    const child = this.child;
    this.child = null;
    this.childReady = false;
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    const job = this.current;
    this.current = null;
    if (job) this.settle(job, reason);
    if (restart && !this.closed) this.start();
    this.pump();
  }

  private settle(job: Job, error: unknown, text?: string): void {
    job.signal.removeEventListener('abort', job.onAbort);
    if (error) job.reject(error);
    else job.resolve(text!);
  }
}
