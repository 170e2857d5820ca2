import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocF32, free, inArena, arenaStats } from '../src/core/memory.js';

test('arena buffers are zeroed, reused after free, and recognised', () => {
  const a = allocF32(1000);
  assert.ok(inArena(a));
  assert.ok(!inArena(new Float32Array(4)));
  a.fill(7);
  const off = a.byteOffset;
  free(a);
  const b = allocF32(1000);
  assert.equal(b.byteOffset, off, 'freed block is reused');
  assert.ok(b.every((v) => v === 0), 'reused block is zeroed');
  free(b);
});

test('arena grows past its initial size and keeps older views valid', () => {
  const small = allocF32(16);
  small[3] = 42;
  const big = allocF32(16 << 20); // 64 MiB, beyond the initial 4 MiB
  big[big.length - 1] = 1;
  assert.equal(small[3], 42);
  assert.ok(inArena(big));
  const live = arenaStats().liveBytes;
  free(big);
  free(small);
  assert.ok(arenaStats().liveBytes < live);
});
