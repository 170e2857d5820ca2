// The child process that renders a model's chat template (started by chat.ts). A template comes with a
// downloaded model and is a program: it can loop for ever or allocate gigabytes. Here it runs under a
// heap limit (the parent's --max-old-space-size) and the parent kills this process when a rendering takes
// too long, so the server's event loop and heap never see it. A process rather than a worker thread:
// a worker that reaches its heap limit can still abort the whole process (nodejs/node#47224).
import { Template } from '@huggingface/jinja';
import type { RendererReply, RendererRequest } from './chat.js';

let template: Template | null = null;
let specials: Record<string, string | null> = {};
let maxOutputChars = Infinity;

/**
 * What the template's raise_exception throws, told apart from the template's own failures. The engine's
 * built-in cannot be replaced, so the template's calls are renamed to this one (RAISE) at setup.
 */
class TemplateRejection extends Error {}
const RAISE = '__supra_raise_exception';
const raiseException = (args: unknown): never => {
  const value = (v: unknown) => (v !== null && typeof v === 'object' && 'value' in v ? (v as { value: unknown }).value : v);
  throw new TemplateRejection((Array.isArray(args) ? args : [args]).map((v) => String(value(v))).join(' '));
};

function reply(message: RendererReply): void {
  process.send!(message);
}

process.on('message', (m: RendererRequest) => {
  if (m.kind === 'setup') {
    template = new Template(m.source.replace(/\braise_exception\b/g, RAISE));
    specials = m.specials;
    maxOutputChars = m.maxOutputChars;
    reply({ kind: 'ready' });
    return;
  }
  let text: string;
  try {
    text = template!.render({ ...specials, messages: m.messages, add_generation_prompt: m.addGenerationPrompt, [RAISE]: raiseException });
  } catch (e) {
    const message = (e as Error).message ?? String(e);
    if (e instanceof TemplateRejection) reply({ kind: 'rejected', message });
    // a string past the engine's length limit is output too large, whatever the limit set here
    else if (e instanceof RangeError && /string length/i.test(message)) reply({ kind: 'too_long', length: null });
    else reply({ kind: 'failed', message });
    return;
  }
  // checked before the text is copied to the parent
  if (text.length > maxOutputChars) reply({ kind: 'too_long', length: text.length });
  else reply({ kind: 'text', text });
});

// the parent went away (its IPC channel closed): nothing left to render for
process.on('disconnect', () => process.exit(0));
