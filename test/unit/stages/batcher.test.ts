import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { batchHeld, batchPositions, batchRows, heldSizeAt, type PipelineBatch } from '../../../src/core/batch.js';
import { PointColumnsBuilder } from '../../../src/encoders/arrow/point-builder.js';
import type { PointRecord } from '../../../src/core/record.js';
import { Batcher } from '../../../src/stages/batcher.js';

function point(offset: number, dataset: string, size: number): PointRecord {
  return {
    kind: 'point', position: { source: 'f', partition: 0, offset }, size, id: String(offset), dataset, variable: 'v',
    timeUs: 0, lon: 0, lat: 0, value: offset, unit: null, quality: null, station: null, elevation: null, attrs: null,
  };
}

describe('Batcher', () => {
  it('flushes on rows, on bytes, and everything at the end', () => {
    const b = new Batcher({ maxRows: 2, maxBytes: 100, maxAgeMs: null, maxOpenBytes: 1000 });
    const out: PipelineBatch[] = [];
    const route = (r: PointRecord) => ({ record: r, memoryType: 'M', tier: 'hot', partitionPath: 'p' });
    b.add(route(point(1, 'a', 10)), 0, out);
    b.add(route(point(2, 'a', 10)), 0, out);
    assert.equal(out.length, 1);
    assert.equal(out[0]!.flushReason, 'rows');
    b.add(route(point(3, 'b', 150)), 0, out);
    assert.equal(out[1]!.flushReason, 'bytes');
    b.add(route(point(4, 'c', 1)), 0, out);
    b.flushAll('end', out);
    assert.deepEqual(out.map((x) => batchPositions(x).map((p) => p.offset)), [[1, 2], [3], [4]]);
  });

  it('flushes aged batches only when an age limit is set', () => {
    const b = new Batcher({ maxRows: 100, maxBytes: 1e9, maxAgeMs: 1000, maxOpenBytes: 1e9 });
    const out: PipelineBatch[] = [];
    b.add({ record: point(1, 'a', 1), memoryType: 'M', tier: 'hot', partitionPath: 'p' }, 0, out);
    b.flushAged(999, out);
    assert.equal(out.length, 0);
    b.flushAged(1000, out);
    assert.equal(out[0]!.flushReason, 'age');
  });

  it('rebuilds an aligned batch exactly to its end offset, ignoring other limits', () => {
    const b = new Batcher({ maxRows: 2, maxBytes: 1e9, maxAgeMs: 10, maxOpenBytes: 1 });
    const out: PipelineBatch[] = [];
    const incomplete: PipelineBatch[] = [];
    const route = (r: PointRecord) => ({ record: r, memoryType: 'M', tier: 'hot', partitionPath: 'p' });
    b.add(route(point(1, 'a', 5)), 0, out);
    b.add(route(point(3, 'a', 5)), 0, out, 9);
    assert.deepEqual(out.map((x) => [x.flushReason, batchRows(x)]), [['memory', 1]]);
    assert.equal(b.alignedStart(`M\u0000point\u0000a\u0000p\u00000\u0000f`), 3);
    b.add(route(point(5, 'a', 5)), 0, out);
    b.add(route(point(7, 'a', 5)), 100, out);
    b.flushAged(1000, out);
    assert.equal(out.length, 1, 'no rows, age or memory flush while aligned');
    b.add(route(point(9, 'a', 5)), 0, out);
    assert.deepEqual(batchPositions(out[1]!).map((p) => p.offset), [3, 5, 7, 9]);
    assert.equal(out[1]!.flushReason, 'aligned');
    b.add(route(point(11, 'b', 5)), 0, out, 20);
    b.flushAll('end', out, incomplete);
    assert.deepEqual(incomplete.map((x) => batchRows(x)), [1]);
  });

  it('property: no record is lost or duplicated across any sequence of adds and flush triggers, and limits hold', () => {
    const action = fc.oneof(
      fc.record({ kind: fc.constant('add' as const), group: fc.integer({ min: 0, max: 4 }), size: fc.integer({ min: 1, max: 60 }) }),
      fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 500 }) }),
      fc.record({ kind: fc.constant('revoke' as const), group: fc.integer({ min: 0, max: 4 }) }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 50, max: 400 }),
        fc.array(action, { maxLength: 400 }),
        fc.boolean(),
        (maxRows, maxBytes, maxOpenBytes, actions, columnar) => {
          // Batches kept as columns (points for GeoParquet) obey the same rules as record batches.
          const columns = columnar ? { columns: () => new PointColumnsBuilder(2) } : {};
          const b = new Batcher({ maxRows, maxBytes, maxAgeMs: 300, maxOpenBytes });
          const out: PipelineBatch[] = [];
          const abandoned: PipelineBatch[] = [];
          let now = 0;
          let offset = 0;
          for (const a of actions) {
            if (a.kind === 'add') {
              b.add({ record: point(offset++, `d${a.group}`, a.size), memoryType: 'M', tier: 'hot', partitionPath: `g${a.group % 2}`, ...columns }, now, out);
            } else if (a.kind === 'tick') {
              now += a.ms;
              b.flushAged(now, out);
            } else {
              abandoned.push(...b.abandon((batch) => batch.dataset === `d${a.group}`));
            }
            assert.ok(b.openByteCount <= maxOpenBytes, 'open bytes bounded');
            const closed = [...out, ...abandoned].reduce((n, batch) => n + batchRows(batch), 0);
            assert.equal(b.openRecordCount, offset - closed, 'open records counted');
          }
          b.flushAll('end', out);
          const seen = [...out, ...abandoned].flatMap((batch) => batchPositions(batch).map((p) => p.offset)).sort((x, y) => x - y);
          assert.deepEqual(seen, Array.from({ length: offset }, (_, i) => i));
          for (const batch of out) {
            assert.equal(batch.columns !== undefined, columnar);
            assert.ok(batchRows(batch) <= maxRows);
            assert.ok(batch.records?.every((r) => r.dataset === batch.dataset) ?? true);
            // Only the record that crossed the byte limit may take a batch over it.
            assert.ok(batch.bytes - heldSizeAt(batchHeld(batch), batchRows(batch) - 1) < maxBytes);
          }
          assert.equal(b.openRecordCount, 0);
        },
      ),
      { numRuns: 300 },
    );
  });
});
