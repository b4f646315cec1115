import type { PipelineBatch, RowColumns } from '../core/batch.js';
import type { DeadLetterReason, ObservationRecord, SourcePosition } from '../core/record.js';

export interface EncodedObject {
  bytes: Uint8Array;
  rows: number;
  /** The columns written, in order (the manifest's schema). */
  schema: string[];
}

/** An object read back: its records (positions: `base` with the row index as the offset) and columns. */
export interface DecodedObject {
  records: ObservationRecord[];
  schema: string[];
}

/**
 * One format of the format registry (src/encoders/registry.ts): batch → bytes, compressed inside
 * the format where it has codecs, and bytes → records again (re-encoding and verifying moves).
 */
export interface Encoder {
  /** The catalog's `format`, e.g. `parquet`. */
  readonly format: string;
  readonly extension: string;
  readonly contentType: string;
  /** The codec and the level it is actually written at (`null`: the codec has no levels). */
  readonly codec: { name: string; level: number | null };
  /** Same batch → same bytes: replays must write byte-identical objects. */
  encode(batch: PipelineBatch): Promise<EncodedObject>;
  /**
   * Bytes → the records encoded. `key`: the object's key, for formats that keep part of a record
   * in the path (Parquet's partition_cols); required by those.
   */
  decode(bytes: Uint8Array, base: Omit<SourcePosition, 'offset'>, key?: string): DecodedObject;
  /**
   * Why this format refuses a record it was routed (GeoJSON's RFC 7946 validation), or undefined.
   * Checked where records are routed, so a refused record goes to the dead letter, never into a batch.
   */
  refuse?(record: ObservationRecord): { reason: DeadLetterReason; message: string } | undefined;
  /**
   * Set by a format that encodes point batches kept as columns (GeoParquet): makes a batch's
   * columns, so the batcher appends each routed point to them and keeps no record object.
   */
  readonly pointColumns?: () => RowColumns;
  /** Lets go of what encoding holds (a lease on the encode pool); the tier's close calls it. */
  close(): Promise<void>;
}
