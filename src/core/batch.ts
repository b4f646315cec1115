import type { ObservationRecord, RecordKind, SourcePosition } from './record.js';

/** The source positions a batch covers, per source partition. */
export interface ProvenanceRange {
  source: string;
  partition: number;
  firstOffset: number;
  lastOffset: number;
  count: number;
}

/**
 * A batch's rows kept as columns instead of record objects (points bound for GeoParquet): what
 * the pipeline and the catalog read of them. The rows of a batch come from one source partition.
 */
export interface RowColumns {
  readonly kind: 'point';
  readonly rows: number;
  readonly source: string;
  readonly partition: number;
  readonly timeMinUs: number;
  readonly timeMaxUs: number;
  readonly bbox: [number, number, number, number];
  append(record: ObservationRecord): void;
  offsetAt(row: number): number;
  /** The row's payload size in bytes. */
  sizeAt(row: number): number;
  ids(): readonly (string | null)[];
}

interface BatchBase {
  memoryType: string;
  tier: string;
  dataset: string;
  kind: RecordKind;
  /** The expanded `file_organization` path this batch's object goes under. */
  partitionPath: string;
  /** Sum of the records' payload sizes. */
  bytes: number;
  /** Why the batch was flushed. */
  flushReason: FlushReason;
}

/**
 * Records of one memory type, tier, dataset and storage partition, ready to encode: as record
 * objects, or (points for GeoParquet, the hot path) as columns.
 */
export interface Batch extends BatchBase {
  records: ObservationRecord[];
  columns?: undefined;
}

/** Points bound for GeoParquet, kept as columns from the moment they are routed. */
export interface ColumnBatch extends BatchBase {
  columns: RowColumns;
  records?: undefined;
}

/** What the pipeline batches, writes and settles. */
export type PipelineBatch = Batch | ColumnBatch;

/** How many rows a batch holds. */
export function batchRows(batch: PipelineBatch): number {
  return batch.columns === undefined ? batch.records.length : batch.columns.rows;
}

/** The source position of a batch's first row. */
export function firstPosition(batch: PipelineBatch): SourcePosition {
  if (batch.columns === undefined) return batch.records[0]!.position;
  const c = batch.columns;
  return { source: c.source, partition: c.partition, offset: c.offsetAt(0) };
}

/**
 * Items held in the in-flight budget, each with its position and payload size: a list, or a
 * column batch's rows, read by row with no object per row (a settled batch of 100k points would
 * otherwise allocate 200k objects just to be released).
 */
export type HeldRows = readonly { readonly position: SourcePosition; readonly size: number }[] | RowColumns;

/** What a batch holds in the in-flight budget. */
export function batchHeld(batch: PipelineBatch): HeldRows {
  return batch.columns ?? batch.records;
}

export function heldCount(held: HeldRows): number {
  return isRowColumns(held) ? held.rows : held.length;
}

export function isRowColumns(held: HeldRows): held is RowColumns {
  return !Array.isArray(held);
}

/** A batch of record objects, for the sinks that take records (only points bound for GeoParquet are kept as columns). */
export function recordBatch(batch: PipelineBatch): Batch {
  if (batch.columns !== undefined) throw new Error(`a column batch of ${batch.memoryType} reached a sink that takes record objects`);
  return batch;
}

export type FlushReason = 'rows' | 'bytes' | 'age' | 'memory' | 'end' | 'revoke' | 'realign' | 'aligned' | 'covered';

export function batchPositions(batch: PipelineBatch): SourcePosition[] {
  return heldPositions(batchHeld(batch));
}

export function heldPositions(held: HeldRows): SourcePosition[] {
  if (!isRowColumns(held)) return held.map((h) => h.position);
  return Array.from({ length: held.rows }, (_, i) => ({ source: held.source, partition: held.partition, offset: held.offsetAt(i) }));
}

/** The payload size of the row at `row`. */
export function heldSizeAt(held: HeldRows, row: number): number {
  return isRowColumns(held) ? held.sizeAt(row) : held[row]!.size;
}

/** Provenance of a batch: from its records, or from its columns (one partition, offsets in any order). */
export function provenanceOfBatch(batch: PipelineBatch): ProvenanceRange[] {
  if (batch.columns === undefined) return batchProvenance(batch.records);
  const c = batch.columns;
  if (c.rows === 0) return [];
  let first = Infinity;
  let last = -Infinity;
  for (let i = 0; i < c.rows; i++) {
    const o = c.offsetAt(i);
    if (o < first) first = o;
    if (o > last) last = o;
  }
  return [{ source: c.source, partition: c.partition, firstOffset: first, lastOffset: last, count: c.rows }];
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
