import type { Batch } from '../core/batch.js';

export interface EncodedObject {
  bytes: Uint8Array;
  rows: number;
}

/** Batch → bytes of one format, compressed inside the format where it has codecs. */
export interface Encoder {
  /** The catalog's `format`, e.g. `parquet`. */
  readonly format: string;
  readonly extension: string;
  readonly contentType: string;
  readonly codec: { name: string; level: number | null };
  encode(batch: Batch): EncodedObject;
}
