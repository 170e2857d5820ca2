// Make a trained softmax model deeper and its MLPs wider without changing what it computes. New decoder
// layers go on top of the old ones and new MLP units after the old ones, initialised as a fresh model of the
// new shape would be (config.initializer_range) except what writes into the residual stream: a new layer's
// o_proj and down_proj and a new unit's column of down_proj start at zero, so they add nothing until
// training moves them. The recall teacher's build (scripts/build-teacher.mjs) uses it: the copying circuit
// forms within a few thousand steps in a small model (2 layers, a narrow MLP) but far more slowly in the
// teacher's shape (scripts/induction-toy.mjs), so it forms small and the model then grows to the shape
// natural text wants.
//   node scripts/grow-model.mjs <model dir> [--layers N] [--intermediate N] [--residual-scale C] --out <dir> [--seed 0]
// --residual-scale C multiplies the residual stream by C, which changes nothing the model computes (scaleResidualStream).
// The output is a plain model folder (float32, with the tokenizer files of the input); it is written to a
// temporary folder and renamed into place, so a failure leaves nothing behind.
import { realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dist = process.env.SUPRA_DIST ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const load = (m) => import(pathToFileURL(join(dist, 'src', m)).href);

/**
 * Copies `src` (rows × oldCols, row-major) into the top-left corner of `dst` (rows' × newCols, rows' ≥ rows);
 * `zeroNewColumns` clears the columns past oldCols in the copied rows (a down_proj's new units).
 */
function copyCorner(src, dst, rows, oldCols, newCols, zeroNewColumns) {
  for (let r = 0; r < rows; r++) {
    dst.set(src.subarray(r * oldCols, (r + 1) * oldCols), r * newCols);
    if (zeroNewColumns) dst.fill(0, r * newCols + oldCols, (r + 1) * newCols);
  }
}

/**
 * Multiplies the residual stream by `c` without changing what the model computes: every write into it (the
 * embedding, each layer's o_proj and down_proj) is scaled by c, and every reader normalizes it first (RMSNorm
 * is blind to scale, up to its eps); with tied embeddings the output layer is the scaled embedding, so the
 * final norm's gain takes 1/c. Why: the recall teacher's stage 1 leaves its weights oversized, and so they learn
 * natural text slowly under Adam's lr-sized steps (the measurements are in scripts/build-teacher.mjs).
 */
function scaleResidualStream(model, c) {
  const scale = (p, f) => {
    for (let i = 0; i < p.data.length; i++) p.data[i] *= f;
  };
  for (const p of model.params()) {
    if (p.name === 'model.embed_tokens.weight' || /\.(o_proj|down_proj)\.(weight|bias)$/.test(p.name)) scale(p, c);
    else if (p.name === 'model.norm.weight' && model.config.tie_word_embeddings) scale(p, 1 / c);
  }
}

/**
 * The grown model's parameters: those of the model in `inDir` where names match (in the top-left corner of
 * an MLP matrix that grew), the fresh model's elsewhere, the new parts' writes into the residual stream zero.
 * `layers` and `intermediate` default to the model's own.
 */
export async function growModel(inDir, outDir, { layers, intermediate, residualScale = 1, seed = 0 } = {}) {
  const { loadDecoder } = await load('models/auto.js');
  const { parseConfig } = await load('io/config.js');
  const { initRandom } = await load('models/build.js');
  const { writeModelFiles } = await load('train/checkpoint.js');
  const { writeFolderAtomic } = await load('io/atomic.js');
  const { model: small } = loadDecoder(inDir);
  let grown = null;
  try {
    const oldLayers = small.config.num_hidden_layers, oldFfn = small.config.intermediate_size, hidden = small.config.hidden_size;
    layers ??= oldLayers;
    intermediate ??= oldFfn;
    if (!Number.isInteger(layers) || layers < oldLayers) throw new Error(`--layers must be a whole number, at least the model's ${oldLayers} layers, got ${layers}`);
    if (!Number.isInteger(intermediate) || intermediate < oldFfn) throw new Error(`--intermediate must be a whole number, at least the model's ${oldFfn}, got ${intermediate}`);
    if (!(residualScale > 0 && Number.isFinite(residualScale))) throw new Error(`--residual-scale must be a positive number, got ${residualScale}`);
    if (layers === oldLayers && intermediate === oldFfn && residualScale === 1) throw new Error('nothing to grow: give --layers or --intermediate above the model\'s, or a --residual-scale');
    grown = initRandom(parseConfig({ ...small.config.raw, num_hidden_layers: layers, intermediate_size: intermediate }, join(inDir, 'config.json')), seed);
    const from = new Map(small.params().map((p) => [p.name, p]));
    let copied = 0;
    for (const p of grown.params()) {
      const src = from.get(p.name);
      const layer = /^model\.layers\.(\d+)\./.exec(p.name);
      const isNewLayer = layer !== null && Number(layer[1]) >= oldLayers;
      if (src && /\.mlp\.(gate_proj|up_proj)\.weight$/.test(p.name)) {
        if (src.data.length !== oldFfn * hidden) throw new Error(`${p.name}: ${src.data.length} values in ${inDir}, expected ${oldFfn} × ${hidden}`);
        p.data.set(src.data); // [intermediate, hidden]: the old units are the first rows; the new rows keep their fresh values
      } else if (src && /\.mlp\.down_proj\.weight$/.test(p.name)) {
        if (src.data.length !== hidden * oldFfn) throw new Error(`${p.name}: ${src.data.length} values in ${inDir}, expected ${hidden} × ${oldFfn}`);
        copyCorner(src.data, p.data, hidden, oldFfn, intermediate, true); // [hidden, intermediate]: new units' columns zero
      } else if (src) {
        if (src.data.length !== p.data.length) throw new Error(`${p.name}: ${src.data.length} values in ${inDir}, ${p.data.length} in the grown model`);
        p.data.set(src.data);
      } else if (!isNewLayer) {
        throw new Error(`${inDir} lacks ${p.name}`);
      } else if (/\.(o_proj|down_proj)\.weight$/.test(p.name)) {
        p.data.fill(0);
      }
      if (src) copied++;
    }
    if (copied !== from.size) throw new Error(`${inDir}: ${from.size - copied} tensors have no place in the grown model`);
    if (residualScale !== 1) scaleResidualStream(grown, residualScale);
    writeFolderAtomic(outDir, (tmp) => {
      writeModelFiles(tmp, grown, inDir);
      return [];
    });
  } finally {
    small.free();
    grown?.free();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) {
  const usage = 'usage: node scripts/grow-model.mjs <model dir> [--layers N] [--intermediate N] [--residual-scale C] --out <dir> [--seed 0]';
  let parsed;
  try {
    parsed = parseArgs({ options: { layers: { type: 'string' }, intermediate: { type: 'string' }, 'residual-scale': { type: 'string' }, out: { type: 'string' }, seed: { type: 'string', default: '0' } }, allowPositionals: true });
  } catch (e) {
    console.error(`supra: grow-model: ${e.message}\n${usage}`);
    process.exit(2);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1 || !values.out || (values.layers === undefined && values.intermediate === undefined && values['residual-scale'] === undefined)) {
    console.error(usage);
    process.exit(2);
  }
  const whole = (name) => (values[name] === undefined ? undefined : /^\d+$/.test(values[name]) ? Number(values[name]) : NaN);
  try {
    await growModel(positionals[0], values.out, { layers: whole('layers'), intermediate: whole('intermediate'), residualScale: values['residual-scale'] === undefined ? 1 : Number(values['residual-scale']), seed: Number(values.seed) });
    console.log(`${values.out}: ${positionals[0]} grown (${[values.layers && `${values.layers} layers`, values.intermediate && `intermediate ${values.intermediate}`, values['residual-scale'] && `residual stream × ${values['residual-scale']}`].filter(Boolean).join(', ')})`);
  } catch (e) {
    console.error(`supra: grow-model: ${e.message.replace(/^supra: /, '')}`);
    process.exit(1);
  }
}
