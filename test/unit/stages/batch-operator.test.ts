import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { lastValueFrom, Subject, tap, toArray } from 'rxjs';
import { batchPositions, heldPositions } from '../../../src/core/batch.js';
import { PointColumnsBuilder } from '../../../src/encoders/arrow/point-builder.js';
import type { PointRecord } from '../../../src/core/record.js';
import type { SourcePartitionRef } from '../../../src/core/source.js';
import { batchRecords, type BatchEvent } from '../../../src/stages/batch-operator.js';
import type { Routed } from '../../../src/stages/batcher.js';

function routed(offset: number, partition: number, dataset = 'd', columnar = false): Routed {
  const record: PointRecord = {
    kind: 'point', position: { source: 'obs', partition, offset }, size: 10, id: `obs-${offset}`, dataset, variable: 'v',
    timeUs: 0, lon: 0, lat: 0, value: offset, unit: null, quality: null, station: null, elevation: null, attrs: null,
  };
  return columnar ? { record, memoryType: 'M', tier: 'hot', partitionPath: 'p', columns: () => new PointColumnsBuilder(2) } : { record, memoryType: 'M', tier: 'hot', partitionPath: 'p' };
}

const offsets = (e: BatchEvent) => (e.kind === 'durable' ? heldPositions(e.records) : batchPositions(e.batch)).map((p) => p.offset);

describe('batchRecords', () => {
  it('a revocation abandons the open batches of the revoked partitions only; the others flush at the end', async () => {
    const input = new Subject<Routed[]>();
    const revocations = new Subject<readonly SourcePartitionRef[]>();
    const opened: number[] = [];
    const events = lastValueFrom(
      input.pipe(batchRecords({ limits: { maxRows: 100, maxBytes: 1e9, maxAgeMs: null, maxOpenBytes: 1e9 }, revocations, onOpenRecords: (n) => opened.push(n) }), toArray()),
    );
    input.next([routed(0, 0), routed(1, 1), routed(2, 0)]);
    revocations.next([{ source: 'obs', partition: 0 }]);
    input.next([routed(3, 1), routed(4, 0)]);
    input.complete();
    const out = (await events).map((e) => [e.kind, e.kind === 'durable' ? 'end' : e.batch.flushReason, offsets(e)]);
    assert.deepEqual(out, [
      ['abandoned', 'revoke', [0, 2]],
      ['flushed', 'end', [1, 3]],
      ['flushed', 'end', [4]],
    ]);
    assert.deepEqual(opened, [3, 1, 3, 0]);
  });

  it('flushes a batch on age from its own timer, with no new input', async () => {
    const input = new Subject<Routed[]>();
    let now = 0;
    const seen: BatchEvent[] = [];
    const subscription = input
      .pipe(batchRecords({ limits: { maxRows: 100, maxBytes: 1e9, maxAgeMs: 40, maxOpenBytes: 1e9 }, clock: () => now }))
      .subscribe((e) => seen.push(e));
    input.next([routed(0, 0)]);
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(seen.length, 0, 'not yet 40 ms old on the batch clock');
    now = 40;
    const deadline = Date.now() + 2_000;
    while (seen.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    subscription.unsubscribe();
    assert.deepEqual(seen.map((e) => [e.kind, e.kind === 'flushed' ? e.batch.flushReason : '', offsets(e)]), [['flushed', 'age', [0]]]);
  });

  it('property: every record comes out in exactly one event; abandoned ones only of partitions revoked after they came', async () => {
    const step = fc.oneof(
      fc.record({ op: fc.constant('records' as const), partitions: fc.array(fc.integer({ min: 0, max: 2 }), { maxLength: 8 }) }),
      fc.record({ op: fc.constant('revoke' as const), partitions: fc.uniqueArray(fc.integer({ min: 0, max: 2 }), { maxLength: 2 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 5 }), fc.array(step, { maxLength: 60 }), fc.boolean(), async (maxRows, steps, columnar) => {
        const input = new Subject<Routed[]>();
        const revocations = new Subject<readonly SourcePartitionRef[]>();
        const events: BatchEvent[] = [];
        const done = lastValueFrom(
          input.pipe(batchRecords({ limits: { maxRows, maxBytes: 1e9, maxAgeMs: null, maxOpenBytes: 35 }, revocations }), tap((e) => events.push(e))),
          { defaultValue: undefined },
        );
        let offset = 0;
        /** Revocations: the partition, the offsets read before it, the events emitted before it. */
        const revoked: { partition: number; before: number; events: number }[] = [];
        for (const s of steps) {
          if (s.op === 'records') input.next(s.partitions.map((p) => routed(offset++, p, 'd', columnar)));
          else {
            revocations.next(s.partitions.map((partition) => ({ source: 'obs', partition })));
            for (const partition of s.partitions) revoked.push({ partition, before: offset, events: events.length });
          }
        }
        input.complete();
        await done;
        const seen = events.flatMap(offsets).sort((a, b) => a - b);
        assert.deepEqual(seen, Array.from({ length: offset }, (_, i) => i));
        for (const e of events) if (e.kind !== 'durable') assert.ok(batchPositions(e.batch).every((p, _, all) => p.partition === all[0]!.partition));
        // A record read before its partition was revoked and not flushed by then is never flushed after.
        for (const r of revoked) {
          for (const e of events.slice(r.events)) {
            if (e.kind !== 'flushed') continue;
            for (const x of batchPositions(e.batch)) {
              if (x.partition === r.partition) assert.ok(x.offset >= r.before, `offset ${x.offset} written after its revocation`);
            }
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});
