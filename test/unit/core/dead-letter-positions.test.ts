import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DeadLetterPositions } from '../../../src/core/dead-letter.js';

/**
 * The dedup state of the dead-letter sinks against a model: a dead letter (an append-only list
 * of positions), workers that flush chunks of a partition's bad records, crash at any point
 * (durable but not committed: losing the in-memory state) and are reassigned from the committed
 * offset, reloading what the dead letter holds. The dead letter never holds a position twice and
 * ends holding every bad position.
 */
describe('DeadLetterPositions', () => {
  it('a dead letter fed by crashing, redelivering workers holds each position once (property)', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('flush' as const), partition: fc.integer({ min: 0, max: 2 }), count: fc.integer({ min: 1, max: 5 }) }),
      fc.record({ kind: fc.constant('commit' as const), partition: fc.integer({ min: 0, max: 2 }) }),
      fc.record({ kind: fc.constant('crash' as const) }),
    );
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 30 }), fc.array(op, { maxLength: 60 }), (badOffsets, ops) => {
        const bad = [...new Set(badOffsets)].sort((a, b) => a - b);
        const deadLetter: { partition: number; offset: number }[] = [];
        const committed = [0, 0, 0];
        const cursor = [0, 0, 0]; // index into `bad` each partition has read up to
        let state = new DeadLetterPositions();
        const assign = () => {
          for (let p = 0; p < 3; p++) {
            // Redelivery from the committed offset; what the dead letter holds from there is loaded.
            cursor[p] = bad.findIndex((o) => o >= committed[p]!);
            if (cursor[p] === -1) cursor[p] = bad.length;
            state.load('t', p, committed[p]!, deadLetter.filter((d) => d.partition === p).map((d) => d.offset));
          }
        };
        const flush = (p: number, count: number) => {
          const chunk = bad.slice(cursor[p], cursor[p]! + count).map((offset) => ({ position: { source: 't', partition: p, offset } }));
          cursor[p]! += chunk.length;
          for (const e of state.fresh([...chunk, ...chunk])) {
            deadLetter.push({ partition: p, offset: e.position.offset });
            state.add(e.position);
          }
        };
        assign();
        for (const o of ops) {
          if (o.kind === 'flush') flush(o.partition, o.count);
          else if (o.kind === 'commit') committed[o.partition] = cursor[o.partition]! < bad.length ? bad[cursor[o.partition]!]! : 41;
          else {
            state = new DeadLetterPositions();
            assign();
          }
        }
        for (let p = 0; p < 3; p++) flush(p, bad.length);
        for (let p = 0; p < 3; p++) {
          const held = deadLetter.filter((d) => d.partition === p).map((d) => d.offset);
          assert.deepEqual(held.slice().sort((a, b) => a - b), bad, `partition ${p}: every bad position once`);
        }
        assert.ok(state.size <= 3 * bad.length, 'bounded by the bad positions of the assigned partitions');
      }),
      { numRuns: 500 },
    );
  });

  it('a reassignment prunes positions before the new start', () => {
    const s = new DeadLetterPositions();
    s.load('t', 0, 0, [1, 5, 9]);
    s.add({ source: 't', partition: 0, offset: 12 });
    s.load('t', 0, 6, []);
    assert.equal(s.size, 2);
    assert.equal(s.has({ source: 't', partition: 0, offset: 9 }), true);
    assert.equal(s.has({ source: 't', partition: 0, offset: 1 }), false);
    assert.equal(s.has({ source: 'u', partition: 0, offset: 9 }), false);
  });
});
