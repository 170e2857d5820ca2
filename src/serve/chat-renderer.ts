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

function reply(message: RendererReply): void {
  process.send!(message);
}

process.on('message', (m: RendererRequest) => {
  if (m.kind === 'setup') {
    template = new Template(m.source);
    specials = m.specials;
    maxOutputChars = m.maxOutputChars;
    reply({ kind: 'ready' });
    return;
  }
  let text: string;
  try {
    text = template!.render({ ...specials, messages: m.messages, add_generation_prompt: m.addGenerationPrompt });
  } catch (e) {
    reply({ kind: 'rejected', message: (e as Error).message ?? String(e) });
    return;
  }
  // checked before the text is copied to the parent
  if (text.length > maxOutputChars) reply({ kind: 'too_long', length: text.length });
  else reply({ kind: 'text', text });
});

// the parent went away (its IPC channel closed): nothing left to render for
process.on('disconnect', () => process.exit(0));
