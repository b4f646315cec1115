import { Observable, type OperatorFunction } from 'rxjs';
import type { Batch } from '../core/batch.js';
import { batchIdOf, type Batcher, type Routed } from './batcher.js';
import type { CoverageIndex } from './coverage.js';

export interface BatchOperatorOptions {
  /** Age flushes run on a timer only when set. */
  maxAgeMs: number | null;
  /** Catalogued objects of redelivered ranges: rebuilt whole or skipped. */
  coverage?: CoverageIndex;
  /** A record already durable in a catalogued object (skipped, or in an incomplete rebuild). */
  onDurable?: (routed: Routed['record']) => void;
  clock?: () => number;
}

/**
 * RxJS operator over a Batcher: routed records in, flushed batches out. Every open batch is
 * flushed when the input completes; rebuilds that did not reach their end are reported durable.
 */
export function batchRecords(batcher: Batcher, options: BatchOperatorOptions): OperatorFunction<Routed[], Batch> {
  const clock = options.clock ?? Date.now;
  const { coverage } = options;
  return (input) =>
    new Observable<Batch>((subscriber) => {
      const out: Batch[] = [];
      const emit = () => {
        while (out.length > 0) subscriber.next(out.shift()!);
      };
      const timer =
        options.maxAgeMs === null
          ? undefined
          : setInterval(() => {
              batcher.flushAged(clock(), out);
              emit();
            }, Math.max(20, Math.min(1000, options.maxAgeMs / 4)));
      const subscription = input.subscribe({
        next(routed) {
          const now = clock();
          for (const r of routed) {
            if (coverage === undefined || coverage.empty) {
              batcher.add(r, now, out);
              continue;
            }
            const id = batchIdOf(r);
            const decision = coverage.decide(id, r.record.position, batcher.alignedStart(id), r.tier);
            if (decision.action === 'skip') {
              // Keep the invariant "an object holds every record of its id in its range".
              batcher.flush(id, 'covered', out);
              options.onDurable?.(r.record);
            } else {
              batcher.add(r, now, out, decision.action === 'rebuild' ? decision.end : undefined, id);
            }
          }
          emit();
        },
        error(error) {
          subscriber.error(error);
        },
        complete() {
          const incomplete: Batch[] = [];
          batcher.flushAll('end', out, incomplete);
          for (const batch of incomplete) for (const record of batch.records) options.onDurable?.(record);
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
