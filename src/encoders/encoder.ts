import type { Batch } from '../core/batch.js';
import type { ObservationRecord, SourcePosition } from '../core/record.js';

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
  encode(batch: Batch): Promise<EncodedObject>;
  decode(bytes: Uint8Array, base: Omit<SourcePosition, 'offset'>): DecodedObject;
  /** Lets go of what encoding holds (a lease on the encode pool); the tier's close calls it. */
  close(): Promise<void>;
}
