import type { Batch, FlushReason } from '../core/batch.js';
import type { ObservationRecord } from '../core/record.js';

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
}

interface OpenBatch extends Batch {
  openedAt: number;
}

/**
 * Groups records per (tier, memory type, kind, dataset, partition path) and flushes a group when
 * it reaches `maxRows` or `maxBytes`, gets older than `maxAgeMs`, when all open groups together
 * exceed `maxOpenBytes`, or at the end. Pure and synchronous: the caller drives the clock.
 * Every record added comes out in exactly one flushed batch.
 */
export class Batcher {
  private readonly open = new Map<string, OpenBatch>();
  private openBytes = 0;

  constructor(private readonly limits: BatchLimits) {}

  get openRecordCount(): number {
    let n = 0;
    for (const b of this.open.values()) n += b.records.length;
    return n;
  }

  get openByteCount(): number {
    return this.openBytes;
  }

  add(routed: Routed, now: number, out: Batch[]): void {
    const { record } = routed;
    const id = `${routed.tier}\u0000${routed.memoryType}\u0000${record.kind}\u0000${record.dataset}\u0000${routed.partitionPath}`;
    let batch = this.open.get(id);
    if (batch === undefined) {
      batch = {
        memoryType: routed.memoryType,
        tier: routed.tier,
        dataset: record.dataset,
        kind: record.kind,
        partitionPath: routed.partitionPath,
        records: [],
        bytes: 0,
        flushReason: 'end',
        openedAt: now,
      };
      this.open.set(id, batch);
    }
    batch.records.push(record);
    batch.bytes += record.size;
    this.openBytes += record.size;
    if (batch.records.length >= this.limits.maxRows) out.push(this.close(id, batch, 'rows'));
    else if (batch.bytes >= this.limits.maxBytes) out.push(this.close(id, batch, 'bytes'));
    while (this.openBytes > this.limits.maxOpenBytes && this.open.size > 0) {
      let largestId = '';
      let largest: OpenBatch | undefined;
      for (const [k, b] of this.open) {
        if (largest === undefined || b.bytes > largest.bytes) {
          largest = b;
          largestId = k;
        }
      }
      out.push(this.close(largestId, largest!, 'memory'));
    }
  }

  /** Flushes batches older than `maxAgeMs`. */
  flushAged(now: number, out: Batch[]): void {
    const maxAge = this.limits.maxAgeMs;
    if (maxAge === null) return;
    for (const [id, batch] of this.open) if (now - batch.openedAt >= maxAge) out.push(this.close(id, batch, 'age'));
  }

  /** Flushes every open batch (end of input, shutdown) or those matching `filter` (revocation). */
  flushAll(reason: FlushReason, out: Batch[], filter?: (batch: Batch) => boolean): void {
    for (const [id, batch] of this.open) if (filter === undefined || filter(batch)) out.push(this.close(id, batch, reason));
  }

  private close(id: string, batch: OpenBatch, reason: FlushReason): Batch {
    this.open.delete(id);
    this.openBytes -= batch.bytes;
    const { openedAt: _openedAt, ...flushed } = batch;
    return { ...flushed, flushReason: reason };
  }
}
