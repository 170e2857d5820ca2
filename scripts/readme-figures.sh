#!/usr/bin/env bash
# The README's measured figures on the embedded teacher, regenerated from scratch (after `npm run build:teacher`
# stored a new teacher): `npm start` on both backends, the perplexities of `supra eval`, the dtype table, the
# probes and the attention analysis. Everything goes to runs/readme (the models, the logs) and docs/figures (what
# the README shows); the end prints the numbers the README quotes. About 15 minutes on 2 cores.
#   bash scripts/readme-figures.sh            (after npm run build)
set -euo pipefail
cd "$(dirname "$0")/.."
supra() { node dist/src/cli/main.js "$@"; }
out=runs/readme
figures=docs/figures
text=$figures/heldout.txt
teacher=assets/teacher
rm -rf "$out"
mkdir -p "$out" "$figures/dtype"

# the main job, as a fresh clone runs it (its report.json holds the perplexities and probe scores; the log the sample and the time)
for backend in native wasm; do
  start=$(date +%s)
  supra demo --backend "$backend" --out "$out/demo-$backend" | tee "$out/demo-$backend.log"
  echo "demo on $backend: $(( $(date +%s) - start )) s end to end" | tee -a "$out/demo-$backend.log"
done
model=$out/demo-native/final

# perplexity on the held-out text
supra eval --model "$teacher" --text "$text" --max-length 256 --stride 128 --json "$figures/eval-teacher-256.json"
supra eval --model "$teacher" --text "$text" --json "$figures/eval-teacher.json"
supra linearize "$teacher" --out "$out/linearized"
supra eval --model "$out/linearized" --text "$text" --json "$figures/eval-linearized.json"
supra eval --model "$model" --text "$text" --json "$figures/eval-supra.json"
# the same in each weight precision (a SUPRA model's feature maps folded at bf16 and int8, as loaded by default, and separate)
for dtype in f32 bf16 int8; do
  supra eval --model "$teacher" --text "$text" --dtype "$dtype" --json "$figures/dtype/teacher-$dtype.json"
  supra eval --model "$model" --text "$text" --dtype "$dtype" --json "$figures/dtype/supra-$dtype.json"
done
for dtype in bf16 int8; do
  supra eval --model "$model" --text "$text" --dtype "$dtype" --feature-maps separate --json "$figures/dtype/supra-$dtype-separate.json"
done
supra eval --model "$model" --text "$text" --feature-maps folded --json "$figures/dtype/supra-f32-folded.json"

# what linearization costs: the probes and the attention similarity
for probe in copy passkey mqar; do supra probe "$probe" --teacher "$teacher" --model "$model" --out "$figures"; done
supra analyze --teacher "$teacher" --model "$model" --text "$text" --out "$figures"

node -e '
const fs = require("fs");
const ppl = (f) => JSON.parse(fs.readFileSync(f, "utf8")).perplexity.overall.perplexity;
for (const f of ["eval-teacher-256", "eval-teacher", "eval-linearized", "eval-supra"]) console.log(f, ppl(`docs/figures/${f}.json`).toFixed(4));
for (const m of ["teacher", "supra", "supra-separate"]) {
  const file = (d) => m === "supra-separate" ? (d === "f32" ? "supra-f32" : `supra-${d}-separate`) : `${m}-${d}`;
  console.log(m, ["f32", "bf16", "int8"].map((d) => `${d} ${ppl(`docs/figures/dtype/${file(d)}.json`).toFixed(4)}`).join(" | "));
}
console.log("supra f32 folded", ppl("docs/figures/dtype/supra-f32-folded.json").toFixed(4));
'
