import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { OffsetTracker } from '../../../src/core/offset-tracker.js';

const pos = (offset: number, partition = 0) => ({ source: 't', partition, offset });

describe('OffsetTracker', () => {
  it('commits only the contiguous acked prefix', () => {
    const t = new OffsetTracker();
    for (const o of [10, 11, 12, 13]) t.track(pos(o));
    t.ack(pos(12));
    assert.equal(t.committed('t', 0), undefined);
    t.ack(pos(10));
    assert.equal(t.committed('t', 0), 11);
    t.ack(pos(11));
    assert.equal(t.committed('t', 0), 13);
    assert.deepEqual(t.takeCommittable(), [{ source: 't', partition: 0, offset: 13 }]);
    assert.deepEqual(t.takeCommittable(), []);
    assert.equal(t.inFlight(), 1);
  });

  it('batches acked in turn across two partitions, past the compaction of its pending list', () => {
    // Like a pipeline: records of two partitions interleaved, split into batches (evens, odds) acked in turn.
    const t = new OffsetTracker();
    for (let o = 0; o < 20_000; o++) for (const p of [0, 1]) t.track(pos(o, p));
    for (let o = 0; o < 20_000; o += 2) for (const p of [0, 1]) t.ack(pos(o, p));
    assert.equal(t.committed('t', 0), 1);
    for (let o = 1; o < 15_000; o += 2) t.ack(pos(o, 0));
    assert.equal(t.committed('t', 0), 15_001);
    assert.equal(t.committed('t', 1), 1);
    for (let o = 15_001; o < 20_000; o += 2) t.ack(pos(o, 0));
    assert.equal(t.committed('t', 0), 20_000);
    // Partition 1 is committable after offset 0 only: everything behind offset 1 still counts.
    assert.equal(t.inFlight(), 20_000 - 1);
  });

  it('drops redeliveries of tracked offsets and ignores acks after revocation', () => {
    const t = new OffsetTracker();
    assert.equal(t.track(pos(5)), true);
    assert.equal(t.track(pos(5)), false);
    assert.equal(t.track(pos(4)), false);
    t.revoke('t', 0);
    t.ack(pos(5));
    assert.equal(t.committed('t', 0), undefined);
    assert.equal(t.track(pos(5)), true, 'after revocation a partition starts afresh');
  });

  it('property: any interleaving of tracks, acks, revocations and redeliveries commits only fully acked prefixes', () => {
    // Commands over 2 partitions: read the next offset (sometimes a gap, like compaction), ack a
    // tracked one, redeliver an old one, or revoke the partition (then it restarts at its committed offset).
    const command = fc.oneof(
      fc.record({ op: fc.constant('read' as const), p: fc.integer({ min: 0, max: 1 }), gap: fc.integer({ min: 1, max: 3 }) }),
      fc.record({ op: fc.constant('ack' as const), p: fc.integer({ min: 0, max: 1 }), pick: fc.nat() }),
      // A batch's acks: ascending tracked offsets from one pick on (the tracker's hinted path).
      fc.record({ op: fc.constant('ackRun' as const), p: fc.integer({ min: 0, max: 1 }), pick: fc.nat(), length: fc.integer({ min: 1, max: 20 }) }),
      fc.record({ op: fc.constant('redeliver' as const), p: fc.integer({ min: 0, max: 1 }), pick: fc.nat() }),
      fc.record({ op: fc.constant('revoke' as const), p: fc.integer({ min: 0, max: 1 }) }),
    );
    fc.assert(
      fc.property(fc.array(command, { maxLength: 300 }), (commands) => {
        const t = new OffsetTracker();
        const model = [0, 1].map(() => ({ next: 0, tracked: [] as number[], acked: new Set<number>(), committed: 0 }));
        for (const c of commands) {
          const m = model[c.p]!;
          if (c.op === 'read') {
            const offset = m.next + c.gap - 1;
            m.next = offset + 1;
            assert.equal(t.track(pos(offset, c.p)), true);
            m.tracked.push(offset);
          } else if (c.op === 'ack' && m.tracked.length > 0) {
            const offset = m.tracked[c.pick % m.tracked.length]!;
            t.ack(pos(offset, c.p));
            m.acked.add(offset);
          } else if (c.op === 'ackRun' && m.tracked.length > 0) {
            for (const offset of m.tracked.slice(c.pick % m.tracked.length, (c.pick % m.tracked.length) + c.length)) {
              t.ack(pos(offset, c.p));
              m.acked.add(offset);
            }
          } else if (c.op === 'redeliver' && m.tracked.length > 0) {
            assert.equal(t.track(pos(m.tracked[c.pick % m.tracked.length]!, c.p)), false);
          } else if (c.op === 'revoke') {
            t.revoke('t', c.p);
            // Re-assignment resumes from the committed offset: unacked records come again.
            m.next = m.committed;
            m.tracked = [];
            m.acked = new Set();
          }
          const committed = t.committed('t', c.p);
          if (committed !== undefined) {
            // Every tracked offset below the commit point is acked; the commit point never passes an unacked one.
            for (const o of m.tracked) if (o < committed) assert.ok(m.acked.has(o), `offset ${o} committed before ack`);
            const firstUnacked = m.tracked.find((o) => !m.acked.has(o));
            if (firstUnacked !== undefined) assert.ok(committed <= firstUnacked);
            else if (m.tracked.length > 0) assert.equal(committed, m.tracked[m.tracked.length - 1]! + 1);
            m.committed = Math.max(m.committed, committed);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
