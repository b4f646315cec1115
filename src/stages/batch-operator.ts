import { Observable, type OperatorFunction } from 'rxjs';
import type { Batch } from '../core/batch.js';
import { Batcher, type BatchLimits, type Routed } from './batcher.js';

/**
 * RxJS operator over the Batcher: routed records in, flushed batches out. Age flushes run on a
 * timer only when `maxAgeMs` is set; every open batch is flushed when the input completes.
 */
export function batchRecords(limits: BatchLimits, clock: () => number = Date.now): OperatorFunction<Routed[], Batch> {
  return (input) =>
    new Observable<Batch>((subscriber) => {
      const batcher = new Batcher(limits);
      const out: Batch[] = [];
      const emit = () => {
        while (out.length > 0) subscriber.next(out.shift()!);
      };
      const timer =
        limits.maxAgeMs === null
          ? undefined
          : setInterval(() => {
              batcher.flushAged(clock(), out);
              emit();
            }, Math.max(20, Math.min(1000, limits.maxAgeMs / 4)));
      const subscription = input.subscribe({
        next(routed) {
          const now = clock();
          for (const r of routed) batcher.add(r, now, out);
          emit();
        },
        error(error) {
          subscriber.error(error);
        },
        complete() {
          batcher.flushAll('end', out);
          emit();
          subscriber.complete();
        },
      });
      return () => {
        if (timer !== undefined) clearInterval(timer);
        subscription.unsubscribe();
      };
    });
}
