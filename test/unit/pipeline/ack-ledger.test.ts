import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { lastValueFrom, Subject } from 'rxjs';
import { SourceError } from '../../../src/core/errors.js';
import type { Committable } from '../../../src/core/offset-tracker.js';
import type { SourcePosition } from '../../../src/core/record.js';
import type { RawChunk } from '../../../src/core/source.js';
import { PointColumnsBuilder } from '../../../src/encoders/arrow/point-builder.js';
import { AckLedger, type Held, type Settlement } from '../../../src/pipeline/ack-ledger.js';

const pos = (offset: number, partition = 0): SourcePosition => ({ source: 't', partition, offset });
const chunkOf = (offsets: number[], partition = 0): RawChunk => ({
  payloads: offsets.map((o) => Buffer.from(`p${o}`)),
  positions: offsets.map((o) => pos(o, partition)),
  keys: offsets.map((o) => `k${o}`),
});
/** Holds every payload at its length. */
const holdAll = (fresh: RawChunk) => ({ fresh, held: fresh.positions.map((position, i): Held => ({ position, size: fresh.payloads[i]!.length })) });

/** The next value of an intake that must not have ended. */
async function next<T>(intake: AsyncIterator<T>): Promise<T> {
  const result = await intake.next();
  assert.ok(result.done !== true, 'the intake ended');
  return result.value;
}

/** A source fed by the test: `push` a chunk, and the next pull gets it. */
function feed() {
  const queue: RawChunk[] = [];
  let wake: (() => void) | undefined;
  let pulls = 0;
  async function* chunks(): AsyncGenerator<RawChunk> {
    for (;;) {
      while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      pulls++;
      yield queue.shift()!;
    }
  }
  return {
    chunks: chunks(),
    push(chunk: RawChunk) {
      queue.push(chunk);
      wake?.();
    },
    get pulls() {
      return pulls;
    },
  };
}

/** The ledger with its settling stream subscribed; commits recorded in order. */
function settling(maxBytes: number, commit: (offsets: Committable[]) => Promise<void> = async () => undefined) {
  const commits: Committable[][] = [];
  const ledger = new AckLedger({
    maxBytes,
    commit: (offsets) => {
      commits.push(offsets);
      return commit(offsets);
    },
  });
  const settlements = new Subject<Settlement>();
  const done = lastValueFrom(settlements.pipe(ledger.settleAll()), { defaultValue: undefined });
  return { ledger, settlements, done, commits };
}

describe('AckLedger', () => {
  it('admits a chunk without its redeliveries, and charges what it holds', async () => {
    const { ledger } = settling(1_000);
    const source = feed();
    const intake = ledger.intake(source.chunks, holdAll, new AbortController().signal);
    source.push(chunkOf([0, 1, 2]));
    const first = await next(intake);
    assert.deepEqual(first.fresh.positions.map((p) => p.offset), [0, 1, 2]);
    source.push(chunkOf([1, 2, 3, 2, 4]));
    const second = await next(intake);
    assert.deepEqual(second.fresh.positions.map((p) => p.offset), [3, 4]);
    assert.deepEqual(second.fresh.payloads.map((p) => Buffer.from(p).toString()), ['p3', 'p4']);
    assert.deepEqual(second.fresh.keys, ['k3', 'k4']);
    assert.equal(ledger.heldBytes, 5 * 2);
    assert.equal(ledger.inFlight(), 5);
  });

  it('pulls the next chunk only when the budget has room again, or the signal aborts', async () => {
    const { ledger, settlements } = settling(4);
    const source = feed();
    const controller = new AbortController();
    const intake = ledger.intake(source.chunks, holdAll, controller.signal);
    source.push(chunkOf([0, 1, 2]));
    source.push(chunkOf([3]));
    source.push(chunkOf([4]));
    const first = await next(intake);
    assert.equal(ledger.heldBytes, 6);
    const pending = next(intake);
    for (let i = 0; i < 20; i++) await tick();
    assert.equal(source.pulls, 1, 'the source is not pulled while the budget is used up');
    settlements.next({ held: first.held.slice(0, 1), durable: true });
    for (let i = 0; i < 20; i++) await tick();
    assert.equal(source.pulls, 1, 'still 4 of 4 bytes held');
    settlements.next({ held: first.held.slice(1, 2), durable: true });
    assert.deepEqual((await pending).fresh.positions.map((p) => p.offset), [3]);
    assert.equal(source.pulls, 2);
    const blocked = next(intake);
    for (let i = 0; i < 20; i++) await tick();
    assert.equal(source.pulls, 2);
    controller.abort();
    assert.deepEqual((await blocked).fresh.positions.map((p) => p.offset), [4], 'draining stops waiting');
  });

  it('commits durable prefixes only: a dropped position holds its partition back, not the others', async () => {
    const { ledger, settlements, done, commits } = settling(1_000);
    const source = feed();
    const intake = ledger.intake(source.chunks, holdAll, new AbortController().signal);
    source.push(chunkOf([0, 1, 2], 0));
    const p0 = (await next(intake)).held;
    source.push(chunkOf([0, 1], 1));
    const p1 = (await next(intake)).held;
    settlements.next({ held: [p0[1]!, p0[2]!], durable: true });
    settlements.next({ held: [p0[0]!], durable: false });
    settlements.next({ held: p1, durable: true });
    settlements.complete();
    await done;
    assert.deepEqual(commits.flat(), [{ source: 't', partition: 1, offset: 2 }]);
    assert.equal(ledger.heldBytes, 0);
    assert.deepEqual(ledger.unacked(), [{ source: 't', partition: 0, firstOffset: 0, count: 1 }], 'the dropped position is still unacknowledged');
    assert.equal(ledger.inFlight(), 3, 'nor are the durable ones after it committable');
  });

  it('settles a column batch by its rows: each row\'s offset acked and its size released, in any order', async () => {
    const { ledger, settlements, done, commits } = settling(1_000);
    const source = feed();
    const intake = ledger.intake(source.chunks, holdAll, new AbortController().signal);
    source.push(chunkOf([0, 1, 2, 3]));
    const held = (await next(intake)).held;
    // Rows 3, 1, 0 as columns (a batch sorted for storage); row 2 stays out and holds the commit back.
    const columns = new PointColumnsBuilder(2);
    for (const offset of [3, 1, 0]) {
      columns.append({ kind: 'point', position: pos(offset), size: 2, id: null, dataset: 'd', variable: 'v', timeUs: 0, lon: 0, lat: 0, value: 0, unit: null, quality: null, station: null, elevation: null, attrs: null });
    }
    settlements.next({ held: columns, durable: true });
    await tick();
    assert.equal(ledger.heldBytes, 2, 'the three rows\' bytes are released');
    settlements.next({ held: [held[2]!], durable: true });
    settlements.complete();
    await done;
    assert.deepEqual(commits.flat().at(-1), { source: 't', partition: 0, offset: 4 });
    assert.deepEqual(commits.flat().map((c) => c.offset), [2, 4]);
    assert.equal(ledger.heldBytes, 0);
  });

  it('settlements of a revoked partition release their bytes but are never committed', async () => {
    const { ledger, settlements, done, commits } = settling(1_000);
    const source = feed();
    const intake = ledger.intake(source.chunks, holdAll, new AbortController().signal);
    source.push(chunkOf([5, 6]));
    const held = (await next(intake)).held;
    ledger.revoke([{ source: 't', partition: 0 }]);
    settlements.next({ held, durable: true });
    settlements.complete();
    await done;
    assert.deepEqual(commits, []);
    assert.equal(ledger.heldBytes, 0);
    assert.equal(ledger.inFlight(), 0);
  });

  it('completes only after the last commit, and a failed commit fails the stream with its cause', async () => {
    let release!: () => void;
    const slow = settling(1_000, () => new Promise<void>((resolve) => (release = resolve)));
    const source = feed();
    const intake = slow.ledger.intake(source.chunks, holdAll, new AbortController().signal);
    source.push(chunkOf([0]));
    slow.settlements.next({ held: (await next(intake)).held, durable: true });
    slow.settlements.complete();
    let completed = false;
    void slow.done.then(() => (completed = true));
    for (let i = 0; i < 20; i++) await tick();
    assert.equal(slow.commits.length, 1);
    assert.equal(completed, false, 'the stream waits for the commit in flight');
    release();
    await slow.done;

    const refused = new Error('broker said no');
    const failing = settling(1_000, async () => {
      throw refused;
    });
    const source2 = feed();
    const intake2 = failing.ledger.intake(source2.chunks, holdAll, new AbortController().signal);
    source2.push(chunkOf([0, 1], 3));
    failing.settlements.next({ held: (await next(intake2)).held, durable: true });
    await assert.rejects(failing.done, (error: unknown) => {
      assert.ok(error instanceof SourceError);
      assert.equal(error.cause, refused);
      assert.match(error.describe(), /committing offsets failed \[stage=commit offsets=t\[3\]@2\]: broker said no/);
      return true;
    });
  });

  it('a stream that ends with bytes never settled fails, saying how many', async () => {
    const { ledger, settlements, done } = settling(1_000);
    const source = feed();
    const intake = ledger.intake(source.chunks, holdAll, new AbortController().signal);
    source.push(chunkOf([0, 1]));
    const held = (await next(intake)).held;
    settlements.next({ held: held.slice(0, 1), durable: true });
    settlements.complete();
    await assert.rejects(done, /2 in-flight bytes were never settled/);
  });

  it('property: any interleaving of reads, redeliveries, settlements, revocations and commit delays', async () => {
    // Over 2 partitions: read a chunk (new offsets, sometimes with gaps, after redeliveries of
    // offsets already read), settle some held items (durable or dropped), revoke a partition (it
    // is read again from its last commit; what it held is still settled later), or let a commit
    // in flight finish. fast-check's scheduler decides when each commit resolves.
    const command = fc.oneof(
      fc.record({ op: fc.constant('read' as const), p: fc.integer({ min: 0, max: 1 }), gaps: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 5 }), redeliver: fc.nat({ max: 3 }) }),
      fc.record({ op: fc.constant('settle' as const), picks: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), durable: fc.boolean() }),
      fc.record({ op: fc.constant('revoke' as const), p: fc.integer({ min: 0, max: 1 }) }),
      fc.record({ op: fc.constant('tick' as const) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.array(command, { maxLength: 120 }), async (s, commands) => {
        interface Item extends Held {
          epoch: number;
        }
        const model = [0, 1].map(() => ({
          epoch: 0,
          /** Next offset to read, and what the current epoch tracked, ascending. */
          next: 0,
          tracked: [] as number[],
          /** Offsets settled durable by their own current-epoch copy; by any copy, ever. */
          durableHere: new Set<number>(),
          durableEver: new Set<number>(),
          lastCommit: -1,
          lastCommitEpoch: -1,
        }));
        const violations: string[] = [];
        const ledger = new AckLedger({
          maxBytes: Number.MAX_SAFE_INTEGER,
          commit: async (offsets) => {
            for (const o of offsets) {
              const m = model[o.partition]!;
              if (o.offset <= m.lastCommit) violations.push(`p${o.partition}: commit ${o.offset} after ${m.lastCommit}`);
              for (const t of m.tracked) if (t < o.offset && !m.durableEver.has(t)) violations.push(`p${o.partition}: commit ${o.offset} passes unsettled ${t}`);
              m.lastCommit = o.offset;
              m.lastCommitEpoch = m.epoch;
            }
            await s.schedule(Promise.resolve(), 'commit');
          },
        });
        const settlements = new Subject<Settlement>();
        const done = lastValueFrom(settlements.pipe(ledger.settleAll()), { defaultValue: undefined });
        const source = feed();
        let readingEpoch = 0;
        const intake = ledger.intake(
          source.chunks,
          (fresh) => ({
            held: fresh.positions.map((position): Item => ({ position, size: 1 + (position.offset % 5), epoch: readingEpoch })),
          }),
          new AbortController().signal,
        );
        let outstanding: Item[] = [];
        let held = 0;
        const settle = (items: Item[], durable: boolean) => {
          for (const item of items) {
            const m = model[item.position.partition]!;
            if (durable) {
              m.durableEver.add(item.position.offset);
              if (item.epoch === m.epoch) m.durableHere.add(item.position.offset);
            }
            held -= item.size;
          }
          settlements.next({ held: items, durable });
        };
        for (const c of commands) {
          if (c.op === 'read') {
            const m = model[c.p]!;
            const again = c.redeliver === 0 ? [] : m.tracked.slice(-c.redeliver);
            const fresh: number[] = [];
            for (const gap of c.gaps) {
              fresh.push(m.next + gap - 1);
              m.next += gap;
            }
            readingEpoch = m.epoch;
            source.push(chunkOf([...again, ...fresh], c.p));
            const admitted = (await next(intake)).held as Item[];
            assert.deepEqual(admitted.map((i) => i.position.offset), fresh, 'redeliveries are dropped');
            m.tracked.push(...fresh);
            outstanding.push(...admitted);
            for (const item of admitted) held += item.size;
          } else if (c.op === 'settle' && outstanding.length > 0) {
            const picked = new Set(c.picks.map((p) => p % outstanding.length));
            settle(outstanding.filter((_, i) => picked.has(i)), c.durable);
            outstanding = outstanding.filter((_, i) => !picked.has(i));
          } else if (c.op === 'revoke') {
            ledger.revoke([{ source: 't', partition: c.p }]);
            const m = model[c.p]!;
            m.epoch++;
            // The group resumes the partition from its last commit.
            m.next = Math.max(0, m.lastCommit);
            m.tracked = [];
            m.durableHere = new Set();
          } else if (c.op === 'tick' && s.count() > 0) {
            await s.waitOne();
          }
          assert.equal(ledger.heldBytes, held, 'budget = bytes admitted and not settled');
        }
        settle(outstanding, true);
        settlements.complete();
        await s.waitFor(done);
        assert.deepEqual(violations, []);
        assert.equal(ledger.heldBytes, 0, 'the budget returns to zero');
        for (const [p, m] of model.entries()) {
          // Liveness: the last commit reaches at least the prefix the current epoch settled durable itself.
          let prefix = -1;
          for (const t of m.tracked) {
            if (!m.durableHere.has(t)) break;
            prefix = t + 1;
          }
          if (prefix >= 0) assert.ok(m.lastCommitEpoch === m.epoch && m.lastCommit >= prefix, `p${p}: last commit ${m.lastCommit}, durable prefix to ${prefix}`);
        }
      }),
      { numRuns: 200 },
    );
  });
});
