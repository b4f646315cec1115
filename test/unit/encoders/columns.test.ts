/**
 * The Arrow column writers against the obvious way of writing the same column (BigInt per time,
 * TextEncoder per string), on random rows in a random order.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { timestampUsColumn, utf8Column } from '../../../src/encoders/arrow/columns.js';

/** A permutation of 0 … n-1. */
const orderOf = (n: number, seed: number) => {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  let s = seed;
  for (let i = n - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const j = s % (i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
};

describe('arrow columns', () => {
  it('timestampUsColumn writes each time as BigInt would, in the given order', () => {
    fc.assert(
      fc.property(fc.array(fc.maxSafeInteger().map((n) => (n % 2 === 0 ? n : -n))), fc.integer(), (times, seed) => {
        const order = orderOf(times.length, seed);
        const data = timestampUsColumn(Float64Array.from(times), order).data[0]!.values as BigInt64Array;
        assert.deepEqual([...data], [...order].map((i) => BigInt(times[i]!)));
      }),
      { numRuns: 300 },
    );
    const edges = [0, -1, 1, 2 ** 32, -(2 ** 32), 2 ** 32 - 1, -(2 ** 32) - 1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 1_733_184_000_000_123];
    const data = timestampUsColumn(Float64Array.from(edges), Int32Array.from(edges, (_, i) => i)).data[0]!.values as BigInt64Array;
    assert.deepEqual([...data], edges.map(BigInt));
  });

  it('timestampUsColumn refuses a time that is not a safe integer', () => {
    for (const bad of [1.5, NaN, Infinity, 2 ** 60]) {
      assert.throws(() => timestampUsColumn(Float64Array.of(bad), Int32Array.of(0)), RangeError, String(bad));
    }
  });

  // ASCII strings take the one-call path, any other the per-row one.
  for (const unit of ['grapheme-ascii', 'binary'] as const) it(`utf8Column writes ${unit} strings as TextEncoder does, nulls as nulls`, () => {
    fc.assert(
      fc.property(fc.array(fc.option(fc.string({ unit, maxLength: 12 }), { freq: 5 })), fc.integer(), (values, seed) => {
        const order = orderOf(values.length, seed);
        const column = utf8Column(values, order);
        const expected = [...order].map((i) => values[i]!);
        const encoder = new TextEncoder();
        const bytes = Buffer.concat(expected.map((v) => encoder.encode(v ?? '')));
        const data = column.data[0]!;
        assert.deepEqual(Buffer.from(data.values.buffer, data.values.byteOffset, data.values.length), bytes);
        assert.deepEqual([...column], expected.map((v) => (v === null ? null : new TextDecoder().decode(encoder.encode(v)))));
        assert.equal(column.nullCount, expected.filter((v) => v === null).length);
      }),
      { numRuns: 300 },
    );
  });
});
