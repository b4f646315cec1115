import { Observable, type MonoTypeOperatorFunction } from 'rxjs';
import { EarthMemoryError, SourceError } from '../core/errors.js';
import { OffsetTracker, type Committable } from '../core/offset-tracker.js';
import { isRowColumns, type HeldRows } from '../core/batch.js';
import type { SourcePosition } from '../core/record.js';
import type { RawChunk, SourcePartitionRef } from '../core/source.js';

/** Something read and held in memory until it is settled: a record or a dead letter. */
export interface Held {
  readonly position: SourcePosition;
  /** What it counts against the in-flight budget (its payload's length). */
  readonly size: number;
}

/** What a chunk became once admitted, and what of it is now held. */
export interface Admitted {
  readonly held: readonly Held[];
}

/** How held items ended. Every item admitted is settled exactly once. */
export interface Settlement {
  readonly held: HeldRows;
  /**
   * True when the items are durable (written and catalogued, dead-lettered, found catalogued):
   * they are acknowledged. False when they were dropped unwritten (fenced, revoked): only their
   * memory is released, and their partition's next owner reads them again.
   */
  readonly durable: boolean;
}

export interface AckLedgerOptions {
  /** The in-flight budget in bytes (`batch.max_in_flight_bytes`): reading waits while it is used up. */
  maxBytes: number;
  /** Offers committable offsets to the source. Called one at a time, so commits are monotonic per partition. */
  commit: (offsets: Committable[]) => Promise<void>;
}

/**
 * The acknowledgement ledger: what was read and is not settled yet. It admits chunks under the
 * in-flight byte budget (dropping redeliveries) and settles each batch, dead-letter flush, record
 * found durable or batch dropped in one place: the budget is released, durable positions are
 * acked in the offset tracker, and the committable offsets go to the source. Commits never pass
 * a position that is not settled durable (see OffsetTracker) and run one at a time.
 */
export class AckLedger {
  private readonly tracker = new OffsetTracker();
  private bytes = 0;
  private waiters: (() => void)[] = [];
  private settling = false;

  constructor(private readonly options: AckLedgerOptions) {}

  get heldBytes(): number {
    return this.bytes;
  }

  get maxBytes(): number {
    return this.options.maxBytes;
  }

  /** Positions admitted and not yet committable (behind one not settled durable), across the partitions still owned. */
  inFlight(): number {
    return this.tracker.inFlight();
  }

  /** Per owned partition with unsettled positions: the first of them and how many (for stall reports). */
  unacked(): ReturnType<OffsetTracker['unacked']> {
    return this.tracker.unacked();
  }

  /**
   * Reads `chunks` under the budget. Each chunk, without redeliveries, goes through `admit`
   * (parse, classify) and what it holds is charged; the next chunk is pulled from the source only
   * when the budget has room again (or the signal aborts). Pacing the pull itself is what bounds
   * memory: RxJS's `from` pulls an iterable as fast as it yields, whatever runs downstream.
   */
  async *intake<T extends Admitted>(chunks: AsyncIterable<RawChunk>, admit: (fresh: RawChunk) => T, signal: AbortSignal): AsyncGenerator<T> {
    for await (const chunk of chunks) {
      // Raster envelopes are decoded later, one at a time, by the scene assembly: admitting is synchronous.
      const admitted = admit(this.fresh(chunk));
      this.bytes += sizeOf(admitted.held);
      yield admitted;
      await this.room(signal);
    }
  }

  /**
   * Held items whose memory left the heap before they are durable (a raster tile compressed into
   * its scene's COG writer, which keeps compressed tiles within its own bound and spills the
   * rest to disk): their bytes leave the budget now, so a scene larger than the budget cannot
   * stall reading; their positions are still acked only when they are settled, durable.
   */
  unload(held: readonly { size: number }[]): void {
    for (const h of held) {
      this.bytes -= h.size;
      h.size = 0;
    }
    this.wake();
  }

  /** Forgets partitions taken away: their positions are never committed, even if settled later. */
  revoke(partitions: readonly SourcePartitionRef[]): void {
    for (const p of partitions) this.tracker.revoke(p.source, p.partition);
  }

  /**
   * Settles each settlement passing through: budget, tracker and commit, then passes it on. A
   * failed commit fails the stream. On completion the last commit is awaited, and every byte
   * admitted must have been settled. One stream settles a ledger.
   */
  settleAll<S extends Settlement>(): MonoTypeOperatorFunction<S> {
    return (settlements) =>
      new Observable<S>((subscriber) => {
        if (this.settling) {
          subscriber.error(new EarthMemoryError('an acknowledgement ledger is settled by one stream only', { context: { stage: 'ack' } }));
          return undefined;
        }
        this.settling = true;
        let committing = false;
        let again = false;
        let ended = false;
        const finish = () => {
          if (this.bytes === 0) subscriber.complete();
          else subscriber.error(new EarthMemoryError(`${this.bytes} in-flight bytes were never settled`, { context: { stage: 'ack' } }));
        };
        // One commit at a time; settlements during a commit are committed together right after it.
        const loop = async () => {
          try {
            do {
              again = false;
              // Settlements of one synchronous step (a flush, a revocation) go in one commit.
              await null;
              const offsets = this.tracker.takeCommittable();
              if (offsets.length > 0) await this.offer(offsets);
            } while (again);
          } finally {
            committing = false;
          }
        };
        const commit = () => {
          if (committing) {
            again = true;
            return;
          }
          committing = true;
          loop().then(
            () => {
              if (ended && !committing) finish();
            },
            (error: unknown) => subscriber.error(error),
          );
        };
        const subscription = settlements.subscribe({
          next: (settlement) => {
            this.settle(settlement);
            commit();
            subscriber.next(settlement);
          },
          error: (error: unknown) => subscriber.error(error),
          complete: () => {
            ended = true;
            commit();
          },
        });
        return () => {
          subscription.unsubscribe();
          this.settling = false;
        };
      });
  }

  /** The chunk without redeliveries of positions already admitted (their first copy is settled, not these). */
  private fresh(chunk: RawChunk): RawChunk {
    const { positions } = chunk;
    let i = 0;
    while (i < positions.length && this.tracker.track(positions[i]!)) i++;
    if (i === positions.length) return chunk;
    const fresh: RawChunk = { payloads: chunk.payloads.slice(0, i), positions: positions.slice(0, i), keys: chunk.keys?.slice(0, i) };
    for (i++; i < positions.length; i++) {
      if (!this.tracker.track(positions[i]!)) continue;
      fresh.payloads.push(chunk.payloads[i]!);
      fresh.positions.push(positions[i]!);
      fresh.keys?.push(chunk.keys![i] ?? null);
    }
    return fresh;
  }

  private settle(settlement: Settlement): void {
    const { held } = settlement;
    if (settlement.durable) {
      if (isRowColumns(held)) for (let i = 0; i < held.rows; i++) this.tracker.ackOffset(held.source, held.partition, held.offsetAt(i));
      else for (const h of held) this.tracker.ack(h.position);
    }
    this.bytes -= sizeOf(held);
    this.wake();
  }

  private wake(): void {
    if (this.bytes < this.options.maxBytes && this.waiters.length > 0) {
      const waiters = this.waiters;
      this.waiters = [];
      for (const wake of waiters) wake();
    }
  }

  /** Resolves when the budget has room, or the signal aborts (draining reads nothing more). */
  private room(signal: AbortSignal): Promise<void> {
    if (this.bytes < this.options.maxBytes || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        signal.removeEventListener('abort', wake);
        resolve();
      };
      this.waiters.push(wake);
      signal.addEventListener('abort', wake, { once: true });
    });
  }

  private async offer(offsets: Committable[]): Promise<void> {
    try {
      await this.options.commit(offsets);
    } catch (cause) {
      const where = offsets.map((o) => `${o.source}[${o.partition}]@${o.offset}`).join(' ');
      throw new SourceError('committing offsets failed', { cause, context: { stage: 'commit', offsets: where } });
    }
  }
}

function sizeOf(held: HeldRows): number {
  let n = 0;
  if (isRowColumns(held)) for (let i = 0; i < held.rows; i++) n += held.sizeAt(i);
  else for (const h of held) n += h.size;
  return n;
}
