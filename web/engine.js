// The playground's model thread: supra/web runs here, in a Worker, because the wasm pool's caller blocks
// (Atomics.wait) while the kernels' threads work, which a page's main thread may not.
// It holds up to two models ("slots": the SUPRA model and, beside it, a softmax teacher) in one wasm
// memory, and decodes them in turn, one token each, so both columns stream at once.
import { init, runtimeInfo, AutoModelForCausalLM, AutoTokenizer, GenerationState, decodeTokens, stateToBytes, stateFromBytes } from '/dist/src/web/index.js';

/** slot name → { lm, tokenizer, state }; the text shown is the whole context, decoded. */
const slots = new Map();
/** Set by a 'stop' message: the run in flight ends at its next yield. */
let stopping = false;

function reply(msg, transfer = []) { postMessage(msg, transfer); }

function drop(slot) {
  const s = slots.get(slot);
  if (!s) return;
  s.state?.free();
  s.lm.model.free?.();
  slots.delete(slot);
}

function describe(slot, s) {
  const c = s.lm.model.config;
  // what a softmax model of this shape holds per token of context: K and V in float32, every layer
  const kvPerToken = 2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim * 4;
  return { slot, architecture: c.architecture, recurrent: !!c.supra, layers: c.num_hidden_layers, kvPerToken };
}

async function load({ slot, source }) {
  await init();
  drop(slot);
  if (source === null) return reply({ type: 'loaded', slot, model: null, runtime: runtimeInfo() });
  const lm = await AutoModelForCausalLM.from_pretrained(source);
  let tokenizer;
  try {
    tokenizer = await AutoTokenizer.from_pretrained(source);
  } catch (err) {
    lm.model.free?.();
    throw err;
  }
  const s = { lm, tokenizer, state: null };
  slots.set(slot, s);
  reply({ type: 'loaded', slot, model: describe(slot, s), runtime: runtimeInfo() });
}

/** Decode maxNewTokens in every loaded slot, in turn; with a prompt, each starts from a fresh state. */
async function run({ prompt, maxNewTokens, stopAtEos = true }) {
  if (slots.size === 0) throw new Error('supra: load a model first');
  stopping = false;
  const live = [];
  for (const [slot, s] of slots) {
    if (prompt !== undefined) {
      s.state?.free();
      s.state = new GenerationState(s.lm.model, 1);
      s.state.append([s.tokenizer.encode(prompt)]);
    }
    if (!s.state) throw new Error(`supra: ${slot}: nothing to continue: generate or restore a state first`);
    live.push({ slot, s, steps: decodeTokens(s.state, { max_new_tokens: maxNewTokens, do_sample: false, tokenizer: s.tokenizer, ...(stopAtEos ? {} : { eos_token_id: null }) }), n: 0, seconds: 0 });
  }
  let yielded = performance.now();
  while (live.length > 0) {
    for (let i = 0; i < live.length; i++) {
      const r = live[i];
      const t0 = performance.now();
      const next = r.steps.next();
      if (next.done) {
        live.splice(i--, 1);
        continue;
      }
      r.seconds += (performance.now() - t0) / 1000;
      r.n++;
      const id = next.value.tokens[0];
      const { state, tokenizer } = r.s;
      reply({
        type: 'token', slot: r.slot, id, text: tokenizer.decode(state.tokens[0]),
        position: state.length, stateBytes: state.bytes(), tokensPerSecond: r.n / r.seconds,
      });
    }
    // the page draws on its own thread; yield now and then only so that this worker's event loop turns
    // (timers nested this deep are clamped to 4 ms, so not after every token)
    if (performance.now() - yielded > 100) {
      await new Promise((ok) => setTimeout(ok, 0));
      yielded = performance.now();
      if (stopping) break;
    }
  }
  reply({ type: 'done', stopped: stopping });
}

function only(slot) {
  const s = slots.get(slot);
  if (!s) throw new Error(`supra: no model loaded as ${slot}`);
  return s;
}

/** Decode speed without the page: fresh states, a tight loop, no eos stop; the best round's tokens/s. */
async function bench({ slot, prompt, tokens, rounds }) {
  const s = only(slot);
  let best = 0;
  for (let r = 0; r < rounds; r++) {
    const state = new GenerationState(s.lm.model, 1);
    try {
      state.append([s.tokenizer.encode(prompt)]);
      const steps = decodeTokens(state, { max_new_tokens: tokens, do_sample: false, eos_token_id: null });
      const t0 = performance.now();
      let n = 0;
      while (!steps.next().done) n++;
      best = Math.max(best, n / ((performance.now() - t0) / 1000));
    } finally {
      state.free();
    }
  }
  reply({ type: 'bench', slot, tokensPerSecond: best });
}

const handlers = {
  load,
  run,
  bench,
  save: async ({ slot }) => {
    const s = only(slot);
    if (!s.state) throw new Error('supra: nothing to save yet: generate first');
    const bytes = stateToBytes(s.lm.model, s.state);
    reply({ type: 'saved', bytes }, [bytes.buffer]);
  },
  restore: async ({ slot, bytes }) => {
    const s = only(slot);
    const state = stateFromBytes(new Uint8Array(bytes), s.lm.model);
    s.state?.free();
    s.state = state;
    reply({ type: 'restored', slot, text: s.tokenizer.decode(state.tokens[0]), position: state.length, stateBytes: state.bytes() });
  },
};

async function handle(msg) {
  try {
    if (!Object.hasOwn(handlers, msg?.type)) throw new Error(`supra: the engine has no request "${msg?.type}"`);
    await handlers[msg.type](msg);
  } catch (err) {
    reply({ type: 'error', message: String(err?.message ?? err) });
  }
}

// One request at a time, in order: a run yields to this event loop now and then, and a load or restore
// handled meanwhile would free the model or state it is decoding. A stop is the exception: it is for
// the run in flight.
let queue = Promise.resolve();
addEventListener('message', (e) => {
  if (e.data?.type === 'stop') stopping = true;
  else queue = queue.then(() => handle(e.data));
});

// the page knows from this that the worker started (its module loaded): an error before it is fatal
reply({ type: 'ready' });
