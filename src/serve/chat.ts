// The tokenizer's Jinja chat template (tokenizer_config.json's chat_template or chat_template.jinja),
// rendered with @huggingface/jinja the way transformers' apply_chat_template does: messages,
// add_generation_prompt and the special tokens as strings. The rendered text already holds BOS when the
// template writes it, so it is encoded without adding special tokens.
import { Template } from '@huggingface/jinja';
import type { LoadedTokenizer } from '../io/tokenizer.js';
import { ApiError } from './errors.js';
import type { ChatMessage } from './request.js';

export class ChatTemplate {
  private readonly template: Template;
  private readonly specials: Record<string, string | null>;

  constructor(source: string, readonly tokenizer: LoadedTokenizer) {
    try {
      this.template = new Template(source);
    } catch (e) {
      throw new Error(`supra: the tokenizer's chat_template does not parse: ${(e as Error).message}`);
    }
    const name = (id: number | null) => (id === null ? null : tokenizer.idToToken(id));
    this.specials = {
      bos_token: name(tokenizer.bos_token_id),
      eos_token: name(tokenizer.eos_token_id),
      pad_token: name(tokenizer.pad_token_id),
      unk_token: name(tokenizer.unk_token_id),
    };
  }

  /** The prompt text for these messages (a template error, e.g. raise_exception on a bad role order, is a 400). */
  render(messages: readonly ChatMessage[], addGenerationPrompt = true): string {
    try {
      return this.template.render({
        ...this.specials,
        messages: messages.map((m) => ({ ...m })),
        add_generation_prompt: addGenerationPrompt,
      });
    } catch (e) {
      throw new ApiError(400, `The chat template rejected these messages: ${(e as Error).message}`, 'invalid_request_error', 'messages', 'chat_template_error');
    }
  }

  /** Token ids of the rendered prompt. */
  encode(messages: readonly ChatMessage[]): number[] {
    return this.tokenizer.encode(this.render(messages), { add_special_tokens: false });
  }
}
