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
  /** The codec and the level it is actually written at (`null`: the codec has no levels). */
  readonly codec: { name: string; level: number | null };
  /** Same batch → same bytes: replays must write byte-identical objects. */
  encode(batch: Batch): Promise<EncodedObject>;
}
