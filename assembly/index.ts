// Entry of the SIMD kernel module (compiled by scripts/build-wasm.mjs into src/core/wasm/kernels.wasm).
// It imports the arena's shared memory and keeps no data of its own there: no static data, no heap,
// no stack in linear memory, so every worker thread can instantiate it on the same memory.
export { sgemmBlock, sgemmSmallM, sgemmTiles, gemmBf16Tiles, gemmInt8Tiles, WORK_FLOATS, MR, NR, KC, MC, NC, SMALL_M } from './sgemm';
export {
  add, axpy, scale, mul, relu, reluBackward, swiglu, swigluBackward, addBias, sumRows,
  rmsnorm, rmsnormBackwardDx, rmsnormBackwardDw, groupnorm, groupnormBackward, rope,
  softmax, softmaxBackward, logSoftmax, crossEntropy, embedding, embeddingBackward,
  sumSquares, anyNonFinite, adamw,
  toHeadMajor, toTokenMajor, mulBlocks, mulRows, gainGrad, scaleRowsByDecay, decayChunkRows, decayBlocks, linearAttentionStep,
} from './ops';
export { log64 } from './vmath';

/** e^x for n floats (a test hook for the SIMD polynomial; the kernels inline it). */
import { exp4, exp1 } from './vmath';
export function expInto(x: usize, out: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(out + (<usize>i << 2), exp4(v128.load(x + (<usize>i << 2))));
  for (; i < n; i++) store<f32>(out + (<usize>i << 2), exp1(load<f32>(x + (<usize>i << 2))));
}
