import { describeError, EarthMemoryError } from '../core/errors.js';
import type { IndexEntry, ObjectIndex } from '../core/object-index.js';
import { retryOptions, withRetry, type RetryPolicy, type RetryReport } from '../core/retry.js';

/** Index entries waiting for an index that is down; beyond this, writes wait for it (bounded memory). */
export const INDEX_BACKLOG_MAX = 10_000;

/**
 * A tier's index_backend fed without holding up ingest: the catalog is the truth and the index a
 * lookup aid, so an entry that cannot be added because the index is down (a retriable failure)
 * waits here, in order, while writes and acknowledgements go on; one background loop adds the
 * backlog under the index's `retry` policy (the run log tells the outage once) and the index
 * catches up when it is back. Non-retriable failures still fail the write. When the backlog is
 * full, `add` waits for room: the source is then paused like for any slow sink.
 */
export class IndexBacklog {
  private readonly pending = new Map<string, IndexEntry>();
  private draining: Promise<void> | undefined;
  private readonly stopped = new AbortController();
  private report: RetryReport = {};

  constructor(
    private readonly index: ObjectIndex,
    private readonly target: string,
    private readonly policy: RetryPolicy,
    private readonly max = INDEX_BACKLOG_MAX,
  ) {}

  /** Entries not yet in the index. */
  get size(): number {
    return this.pending.size;
  }

  async add(entry: IndexEntry, report: RetryReport = {}): Promise<void> {
    this.report = report;
    if (this.pending.size === 0) {
      try {
        await this.index.add(entry);
        return;
      } catch (error) {
        // Down: the loop below retries it, and tells the outage in the run log.
        if (!(error instanceof EarthMemoryError && error.retriable)) throw error;
      }
    }
    while (this.pending.size >= this.max && !this.pending.has(entry.key)) await this.drain();
    // A later add of the same key replaces the waiting one, in the order of the first.
    this.pending.set(entry.key, entry);
    this.draining ??= this.drainAll().finally(() => (this.draining = undefined));
  }

  /** A removed key no longer waits to be added. */
  forget(key: string): void {
    this.pending.delete(key);
  }

  /** Resolves when the backlog is empty (or the loop stopped). */
  async drain(): Promise<void> {
    while (this.draining) await this.draining;
  }

  /** Stops the loop; what still waits is told in the log (the catalog has it). */
  close(): void {
    this.stopped.abort('closing');
    if (this.pending.size > 0) this.report.notices?.log(`${this.target}: ${this.pending.size} catalogued objects not added to the index (it was unreachable); the catalog lists them`);
  }

  private async drainAll(): Promise<void> {
    while (this.pending.size > 0 && !this.stopped.signal.aborted) {
      const [key, entry] = this.pending.entries().next().value as [string, IndexEntry];
      const options = retryOptions(this.target, this.policy, { ...this.report, signal: this.stopped.signal });
      try {
        await withRetry(() => this.index.add(entry), options);
        if (this.pending.get(key) === entry) this.pending.delete(key);
      } catch (error) {
        if (this.stopped.signal.aborted) return;
        if (error instanceof EarthMemoryError && error.retriable) continue; // gave up after max_elapsed: the next round starts a new outage
        // Not retriable: this entry cannot be indexed; the catalog keeps it.
        this.report.notices?.log(`${this.target}: ${key} not added to the index: ${describeError(error)}`);
        if (this.pending.get(key) === entry) this.pending.delete(key);
      }
    }
  }
}
