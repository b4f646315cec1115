import { concatMap, defer, EMPTY, endWith, interval, map, merge, takeWhile, type Observable, type OperatorFunction } from 'rxjs';
import { batchHeld, firstPosition, type HeldRows, type PipelineBatch } from '../core/batch.js';
import type { ObservationRecord } from '../core/record.js';
import type { SourcePartitionRef } from '../core/source.js';
import { Batcher, batchIdOf, type BatchLimits, type Routed } from './batcher.js';
import type { CoverageIndex } from './coverage.js';

/** What the batching operator emits: every record that goes in comes out in exactly one event. */
export type BatchEvent =
  /** A batch to write. */
  | { kind: 'flushed'; batch: PipelineBatch }
  /** An open batch of a revoked partition, dropped unwritten: the partition's new owner re-reads it. */
  | { kind: 'abandoned'; batch: PipelineBatch }
  /** Redelivered records already durable in a catalogued object (skipped, or in a rebuild cut short). */
  | { kind: 'durable'; records: HeldRows };

export interface BatchOperatorOptions {
  /** `maxAgeMs` also sets the age timer; null runs none (bounded sources stay deterministic). */
  limits: BatchLimits;
  /** Catalogued objects of redelivered ranges: rebuilt whole or skipped. */
  coverage?: CoverageIndex;
  /** Partitions taken away (rebalances): their open batches are abandoned. */
  revocations?: Observable<readonly SourcePartitionRef[]>;
  /** After each step, the records the open batches hold (for stall reports). */
  onOpenRecords?: (count: number) => void;
  clock?: () => number;
}

type Input =
  | { kind: 'records'; routed: Routed[] }
  | { kind: 'age' }
  | { kind: 'revoke'; partitions: readonly SourcePartitionRef[] }
  | { kind: 'end' };

const partitionKey = (p: SourcePartitionRef) => `${p.partition}\u0000${p.source}`;

/**
 * RxJS operator over a Batcher it owns: routed records in, batch events out. The batch age timer
 * and revocations are merged into the same input, so one step at a time touches the Batcher.
 * When the records complete, every open batch is flushed (rebuilds cut short come out durable).
 */
export function batchRecords(options: BatchOperatorOptions): OperatorFunction<Routed[], BatchEvent> {
  const clock = options.clock ?? Date.now;
  const { coverage, limits } = options;
  const ages$ =
    limits.maxAgeMs === null ? EMPTY : interval(Math.max(20, Math.min(1000, limits.maxAgeMs / 4))).pipe(map((): Input => ({ kind: 'age' })));
  const revocations$ = (options.revocations ?? EMPTY).pipe(map((partitions): Input => ({ kind: 'revoke', partitions })));
  return (routed$) =>
    defer(() => {
      const batcher = new Batcher(limits);
      const step = (input: Input): BatchEvent[] => {
        const flushed: PipelineBatch[] = [];
        const events: BatchEvent[] = [];
        if (input.kind === 'records') {
          const now = clock();
          const durable: ObservationRecord[] = [];
          for (const r of input.routed) {
            if (coverage === undefined || coverage.empty) {
              batcher.add(r, now, flushed);
              continue;
            }
            const id = batchIdOf(r);
            const decision = coverage.decide(id, r.record.position, batcher.alignedStart(id), r.tier);
            if (decision.action === 'skip') {
              // Keep the invariant "an object holds every record of its id in its range".
              batcher.flush(id, 'covered', flushed);
              durable.push(r.record);
            } else {
              batcher.add(r, now, flushed, decision.action === 'rebuild' ? decision.end : undefined, id);
            }
          }
          if (durable.length > 0) events.push({ kind: 'durable', records: durable });
        } else if (input.kind === 'age') {
          batcher.flushAged(clock(), flushed);
        } else if (input.kind === 'revoke') {
          const gone = new Set(input.partitions.map(partitionKey));
          for (const batch of batcher.abandon((b) => gone.has(partitionKey(firstPosition(b))))) events.push({ kind: 'abandoned', batch });
        } else {
          const incomplete: PipelineBatch[] = [];
          batcher.flushAll('end', flushed, incomplete);
          for (const batch of incomplete) events.push({ kind: 'durable', records: batchHeld(batch) });
        }
        for (const batch of flushed) events.push({ kind: 'flushed', batch });
        options.onOpenRecords?.(batcher.openRecordCount);
        return events;
      };
      return merge(routed$.pipe(map((routed): Input => ({ kind: 'records', routed })), endWith<Input>({ kind: 'end' })), ages$, revocations$).pipe(
        takeWhile((input) => input.kind !== 'end', true),
        concatMap(step),
      );
    });
}
