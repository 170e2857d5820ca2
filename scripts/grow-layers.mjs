// Make a trained softmax model deeper without changing what it computes: new decoder layers go on top of
// the old ones, initialised as a fresh model of the new depth would be (config.initializer_range) except
// their o_proj and down_proj, which start at zero, so each new layer adds nothing to the residual stream
// until training moves those. The recall teacher's build (scripts/build-teacher.mjs) uses it: the copying
// circuit forms within a few thousand steps in 2 layers but far more slowly in 6 (scripts/induction-toy.mjs),
// so it forms in 2 and the model then grows to the depth natural text wants.
//   node scripts/grow-layers.mjs <model dir> --layers N --out <dir> [--seed 0]
// The output is a plain model folder (float32, with the tokenizer files of the input); it is written to a
// temporary folder and renamed into place, so a failure leaves nothing behind.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

const dist = process.env.SUPRA_DIST ?? 'dist';
const load = (m) => import(pathToFileURL(join(process.cwd(), dist, 'src', m)).href);

/** The grown model's parameters: those of the model in `inDir` where names match, the fresh model's elsewhere, new layers' output projections zero. */
export async function growLayers(inDir, outDir, layers, seed = 0) {
  const { loadDecoder } = await load('models/auto.js');
  const { parseConfig } = await load('io/config.js');
  const { initRandom } = await load('models/build.js');
  const { writeModelFiles } = await load('train/checkpoint.js');
  const { writeFolderAtomic } = await load('io/atomic.js');
  const { model: small } = loadDecoder(inDir);
  let grown = null;
  try {
    const old = small.config.num_hidden_layers;
    if (!Number.isInteger(layers) || layers <= old) throw new Error(`--layers must be a whole number above the model's ${old} layers, got ${layers}`);
    grown = initRandom(parseConfig({ ...small.config.raw, num_hidden_layers: layers }, join(inDir, 'config.json')), seed);
    const from = new Map(small.params().map((p) => [p.name, p]));
    let copied = 0;
    for (const p of grown.params()) {
      const src = from.get(p.name);
      const layer = /^model\.layers\.(\d+)\./.exec(p.name);
      if (src) {
        if (src.data.length !== p.data.length) throw new Error(`${p.name}: ${src.data.length} values in ${inDir}, ${p.data.length} in the grown model`);
        p.data.set(src.data);
        copied++;
      } else if (!layer || Number(layer[1]) < old) {
        throw new Error(`${inDir} lacks ${p.name}`);
      } else if (/\.(o_proj|down_proj)\.weight$/.test(p.name)) {
        p.data.fill(0);
      }
    }
    if (copied !== from.size) throw new Error(`${inDir}: ${from.size - copied} tensors have no place in the grown model`);
    writeFolderAtomic(outDir, (tmp) => {
      writeModelFiles(tmp, grown, inDir);
      return [];
    });
  } finally {
    small.free();
    grown?.free();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values, positionals } = parseArgs({ options: { layers: { type: 'string' }, out: { type: 'string' }, seed: { type: 'string', default: '0' } }, allowPositionals: true });
  if (positionals.length !== 1 || !values.layers || !values.out) {
    console.error('usage: node scripts/grow-layers.mjs <model dir> --layers N --out <dir> [--seed 0]');
    process.exit(2);
  }
  try {
    await growLayers(positionals[0], values.out, Number(values.layers), Number(values.seed));
    console.log(`${values.out}: ${positionals[0]} grown to ${values.layers} layers`);
  } catch (e) {
    console.error(`supra: grow-layers: ${e.message.replace(/^supra: /, "")}`);
    process.exit(1);
  }
}
