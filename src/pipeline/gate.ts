/**
 * Backpressure: a budget of payload bytes read but not yet durable. The source waits for room
 * before reading on, so memory stays bounded whatever the input rate.
 */
export class InFlightGate {
  private used = 0;
  private waiters: (() => void)[] = [];

  constructor(readonly limit: number) {}

  get inFlight(): number {
    return this.used;
  }

  acquire(amount: number): void {
    this.used += amount;
  }

  release(amount: number): void {
    this.used -= amount;
    if (this.used < this.limit && this.waiters.length > 0) {
      const waiters = this.waiters;
      this.waiters = [];
      for (const wake of waiters) wake();
    }
  }

  /** Resolves when usage is under the limit, or the signal aborts. */
  waitForRoom(signal?: AbortSignal): Promise<void> {
    if (this.used < this.limit || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        signal?.removeEventListener('abort', wake);
        resolve();
      };
      this.waiters.push(wake);
      signal?.addEventListener('abort', wake, { once: true });
    });
  }
}
