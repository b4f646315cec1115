import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A byte budget per second shared by every copy of a job (token bucket, at most one second of
 * burst after an idle spell; it starts empty, so a job's first second keeps the rate too):
 * `take(n)` waits until n bytes may go.
 */
export class Throttle {
  private available: number;
  private last = Date.now();

  constructor(private readonly bytesPerSecond: number) {
    this.available = 0;
  }

  async take(bytes: number): Promise<void> {
    for (;;) {
      const now = Date.now();
      this.available = Math.min(this.bytesPerSecond, this.available + ((now - this.last) / 1000) * this.bytesPerSecond);
      this.last = now;
      // A request larger than one second's budget goes once the bucket is full, and leaves it in debt.
      if (this.available >= Math.min(bytes, this.bytesPerSecond)) {
        this.available -= bytes;
        return;
      }
      await sleep(Math.ceil(((Math.min(bytes, this.bytesPerSecond) - this.available) / this.bytesPerSecond) * 1000));
    }
  }
}
