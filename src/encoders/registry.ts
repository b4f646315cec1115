import type { RecordKind } from '../core/record.js';
import type { CompressionConfig } from '../config/common.js';
import { ConfigError } from '../core/errors.js';
import type { Encoder } from './encoder.js';

export interface FormatOptions {
  compression: CompressionConfig;
  /** Parquet: rows per row group. */
  rowGroupSize: number;
  /** Encode on the shared pool of this many workers (`batch.encode_workers`); 0: on the calling thread. */
  encodeWorkers: number;
}

/**
 * The format registry: (record kind, format) → encoder, loaded on first use. A tier's backend
 * names its `format`; the writer, the mover and the read path ask here for the encoder of each
 * kind of record. Raster and array formats (COG, Zarr) register next to GeoParquet.
 */
const geoParquet = async ({ compression, rowGroupSize, encodeWorkers }: FormatOptions): Promise<Encoder> =>
  new (await import('./parquet/geoparquet.js')).GeoParquetEncoder({ compression, rowGroupSize }, encodeWorkers);
const formats: Record<string, { kinds: readonly RecordKind[]; load(options: FormatOptions): Promise<Encoder> }> = {
  parquet: { kinds: ['point', 'vector'], load: geoParquet },
  geoparquet: { kinds: ['point', 'vector'], load: geoParquet },
};

export async function encoderFor(kind: RecordKind, format: string, options: FormatOptions): Promise<Encoder> {
  const entry = formats[format];
  if (entry === undefined) throw new ConfigError(`format ${format} is not known; formats: ${Object.keys(formats).join(', ')}`);
  if (!entry.kinds.includes(kind)) throw new ConfigError(`format ${format} does not store ${kind} records (it stores ${entry.kinds.join(', ')})`);
  return entry.load(options);
}
