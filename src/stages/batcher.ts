import { batchRows, firstPosition, type FlushReason, type PipelineBatch, type RowColumns } from '../core/batch.js';
import type { ObservationRecord } from '../core/record.js';
import { TupleMemo } from './tuple-memo.js';

export interface BatchLimits {
  maxRows: number;
  maxBytes: number;
  /** Age limit in ms; null disables age flushes (bounded sources stay deterministic). */
  maxAgeMs: number | null;
  /** Bound on all open batches together; over it, the largest open batch is flushed. */
  maxOpenBytes: number;
}

/** Where a record goes: its memory type, tier and expanded storage partition. */
export interface Routed {
  record: ObservationRecord;
  memoryType: string;
  tier: string;
  partitionPath: string;
  /** Set when the route's batches keep columns (points bound for GeoParquet): makes a batch's columns. */
  columns?: () => RowColumns;
}

type OpenBatch = PipelineBatch & {
  openedAt: number;
  /**
   * Set when the batch rebuilds an object already in the catalog: it ends exactly at this
   * offset (so it reproduces that object byte for byte) and no other limit flushes it.
   */
  alignedEnd?: number;
};

/**
 * The batch a record belongs to. Batches never mix source partitions, so every object covers one
 * partition and holds every record of its batch id between its first and last offset. The tier is
 * not part of it: an object keeps its identity when it moves to another tier.
 */
export function batchIdOf(routed: Routed): string {
  // Hot path (once per record): the id string is made once per distinct batch, not per record.
  const { record } = routed;
  return batchIds.get(routed.memoryType, record.kind, record.dataset, routed.partitionPath, record.position.partition, record.position.source, idOf, routed, null);
}

const batchIds = new TupleMemo<string>();
const idOf = (routed: Routed): string =>
  batchIdOfRange({ memoryType: routed.memoryType, kind: routed.record.kind, dataset: routed.record.dataset, partitionPath: routed.partitionPath, partition: routed.record.position.partition, source: routed.record.position.source });

/**
 * Groups records per (memory type, kind, dataset, partition path, source partition) and
 * flushes a group when it reaches `maxRows` or `maxBytes`, gets older than `maxAgeMs`, when all
 * open groups together exceed `maxOpenBytes`, or at the end. Pure and synchronous: the caller
 * drives the clock. Every record added comes out in exactly one flushed or abandoned batch.
 */
export class Batcher {
  private readonly open = new Map<string, OpenBatch>();
  private openBytes = 0;
  private openRecords = 0;

  constructor(private readonly limits: BatchLimits) {}

  get openRecordCount(): number {
    return this.openRecords;
  }

  get openByteCount(): number {
    return this.openBytes;
  }

  /** The first offset of the aligned batch open under `id`, if any. */
  alignedStart(id: string): number | undefined {
    const batch = this.open.get(id);
    return batch?.alignedEnd === undefined ? undefined : firstPosition(batch).offset;
  }

  /**
   * Adds a record. With `alignedEnd`, the record starts a batch that rebuilds a catalogued object
   * ending at that offset (any other open batch under the same id is flushed first).
   */
  add(routed: Routed, now: number, out: PipelineBatch[], alignedEnd?: number, id: string = batchIdOf(routed)): void {
    const { record } = routed;
    let batch = this.open.get(id);
    if (batch !== undefined && alignedEnd !== undefined) {
      out.push(this.close(id, batch, 'realign'));
      batch = undefined;
    }
    if (batch === undefined) {
      const base = {
        memoryType: routed.memoryType,
        tier: routed.tier,
        dataset: record.dataset,
        kind: record.kind,
        partitionPath: routed.partitionPath,
        bytes: 0,
        flushReason: 'end' as const,
        openedAt: now,
        alignedEnd,
      };
      batch = routed.columns === undefined ? { ...base, records: [] } : { ...base, columns: routed.columns() };
      this.open.set(id, batch);
    }
    if (batch.columns === undefined) batch.records.push(record);
    else batch.columns.append(record);
    batch.bytes += record.size;
    this.openBytes += record.size;
    this.openRecords += 1;
    if (batch.alignedEnd !== undefined) {
      if (record.position.offset >= batch.alignedEnd) out.push(this.close(id, batch, 'aligned'));
    } else if (batchRows(batch) >= this.limits.maxRows) out.push(this.close(id, batch, 'rows'));
    else if (batch.bytes >= this.limits.maxBytes) out.push(this.close(id, batch, 'bytes'));
    while (this.openBytes > this.limits.maxOpenBytes) {
      let largestId: string | undefined;
      let largest: OpenBatch | undefined;
      for (const [k, b] of this.open) {
        if (b.alignedEnd === undefined && (largest === undefined || b.bytes > largest.bytes)) {
          largest = b;
          largestId = k;
        }
      }
      if (largest === undefined) break;
      out.push(this.close(largestId!, largest, 'memory'));
    }
  }

  /** Flushes the open batch under `id`, if any and not aligned (before skipping a covered record). */
  flush(id: string, reason: FlushReason, out: PipelineBatch[]): void {
    const batch = this.open.get(id);
    if (batch !== undefined && batch.alignedEnd === undefined) out.push(this.close(id, batch, reason));
  }

  /** Flushes batches older than `maxAgeMs`. */
  flushAged(now: number, out: PipelineBatch[]): void {
    const maxAge = this.limits.maxAgeMs;
    if (maxAge === null) return;
    for (const [id, batch] of this.open) {
      if (batch.alignedEnd === undefined && now - batch.openedAt >= maxAge) out.push(this.close(id, batch, 'age'));
    }
  }

  /**
   * Flushes every open batch (end of input, drain). Aligned batches that did not reach their end
   * go to `incomplete` instead: their records are already durable in the object they rebuild.
   */
  flushAll(reason: FlushReason, out: PipelineBatch[], incomplete: PipelineBatch[] = []): void {
    for (const [id, batch] of this.open) (batch.alignedEnd === undefined ? out : incomplete).push(this.close(id, batch, reason));
  }

  /** Removes the open batches matching `filter` without flushing them (revoked partitions). */
  abandon(filter: (batch: PipelineBatch) => boolean): PipelineBatch[] {
    const out: PipelineBatch[] = [];
    for (const [id, batch] of this.open) if (filter(batch)) out.push(this.close(id, batch, 'revoke'));
    return out;
  }

  private close(id: string, batch: OpenBatch, reason: FlushReason): PipelineBatch {
    this.open.delete(id);
    this.openBytes -= batch.bytes;
    this.openRecords -= batchRows(batch);
    const { openedAt: _openedAt, alignedEnd: _alignedEnd, ...flushed } = batch;
    return { ...flushed, flushReason: reason };
  }
}

/** The batch id of a catalogued object (see `batchIdOf`), to match redelivered records to it, in whatever tier it is now. */
export function batchIdOfRange(range: {
  memoryType: string; kind: string; dataset: string; partitionPath: string; partition: number; source: string;
}): string {
  return `${range.memoryType}\u0000${range.kind}\u0000${range.dataset}\u0000${range.partitionPath}\u0000${range.partition}\u0000${range.source}`;
}
