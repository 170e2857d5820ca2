// The message of the error a call throws; the test fails when it throws nothing.
import assert from 'node:assert/strict';

export function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail('expected an error');
}
