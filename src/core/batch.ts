import type { ObservationRecord, RecordKind, SourcePosition } from './record.js';

/** The source positions a batch covers, per source partition. */
export interface ProvenanceRange {
  source: string;
  partition: number;
  firstOffset: number;
  lastOffset: number;
  count: number;
}

/** Records of one memory type, tier, dataset and storage partition, ready to encode. */
export interface Batch {
  memoryType: string;
  tier: string;
  dataset: string;
  kind: RecordKind;
  /** The expanded `file_organization` path this batch's object goes under. */
  partitionPath: string;
  records: ObservationRecord[];
  /** Sum of the records' payload sizes. */
  bytes: number;
  /** Why the batch was flushed. */
  flushReason: FlushReason;
}

export type FlushReason = 'rows' | 'bytes' | 'age' | 'memory' | 'end' | 'revoke' | 'realign' | 'aligned' | 'covered';

export function batchPositions(batch: Batch): SourcePosition[] {
  return batch.records.map((r) => r.position);
}

/** Compact provenance: first/last/count per source partition, in a stable order. */
export function batchProvenance(records: readonly { position: SourcePosition }[]): ProvenanceRange[] {
  const ranges = new Map<string, ProvenanceRange>();
  // A batch holds one partition: the last range matches without building a key string per record.
  let last: ProvenanceRange | undefined;
  for (const { position } of records) {
    let range = last !== undefined && last.partition === position.partition && last.source === position.source ? last : undefined;
    if (range === undefined) {
      const id = `${position.partition}\u0000${position.source}`;
      range = ranges.get(id);
      if (range === undefined) {
        range = { source: position.source, partition: position.partition, firstOffset: position.offset, lastOffset: position.offset, count: 0 };
        ranges.set(id, range);
      }
      last = range;
    }
    if (position.offset < range.firstOffset) range.firstOffset = position.offset;
    if (position.offset > range.lastOffset) range.lastOffset = position.offset;
    range.count += 1;
  }
  return [...ranges.values()].sort(
    (a, b) => (a.source < b.source ? -1 : a.source > b.source ? 1 : a.partition - b.partition),
  );
}

export interface TimeRange {
  minUs: number;
  maxUs: number;
}

export function batchTimeRange(records: readonly ObservationRecord[]): TimeRange {
  let minUs = Infinity;
  let maxUs = -Infinity;
  for (const r of records) {
    if (r.timeUs < minUs) minUs = r.timeUs;
    if (r.timeUs > maxUs) maxUs = r.timeUs;
  }
  return { minUs, maxUs };
}
