import type { Catalog } from './catalog.js';

/**
 * Reads recorded cheaply: counted in memory and written to the catalog once per `flushMs` (one
 * statement per object read, whatever the number of reads), and on close. Promotion on access
 * reads the counts; a read never waits for a catalog write.
 */
export class AccessRecorder {
  private readonly pending = new Map<string, { tier: string; key: string; count: number }>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  /** A timer flush that failed: reported by the next flush or close, not dropped. */
  private failure: unknown;

  constructor(
    private readonly catalog: Catalog,
    flushMs = 1_000,
  ) {
    this.timer = setInterval(() => void this.flush().catch((error: unknown) => (this.failure ??= error)), flushMs);
    this.timer.unref();
  }

  record(tier: string, key: string): void {
    const id = `${tier}\u0000${key}`;
    const entry = this.pending.get(id);
    if (entry === undefined) this.pending.set(id, { tier, key, count: 1 });
    else entry.count++;
  }

  /** Writes the counts gathered so far. */
  flush(): Promise<void> {
    const batch = [...this.pending.values()];
    this.pending.clear();
    this.flushing = this.flushing.then(async () => {
      if (this.failure !== undefined) {
        const failure = this.failure;
        this.failure = undefined;
        throw failure;
      }
      for (const a of batch) await this.catalog.recordAccess(a.tier, a.key, a.count);
    });
    const done = this.flushing;
    this.flushing = done.catch(() => undefined);
    return done;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
