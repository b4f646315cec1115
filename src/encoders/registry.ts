import type { RecordKind } from '../core/record.js';
import type { CompressionConfig } from '../config/common.js';
import { ConfigError, EncodeError } from '../core/errors.js';
import type { CogOptions } from './cog/config.js';
import type { CogScene } from './cog/scene.js';
import type { CogWriter, CogWriterSettings } from './cog/writer.js';
import type { Encoder } from './encoder.js';

/** What a tier stores: record batches (point, vector) or raster scenes. */
export type StoredKind = RecordKind | 'raster';

export interface FormatOptions {
  compression: CompressionConfig;
  /** Parquet: rows per row group. */
  rowGroupSize: number;
  /** Encode on the shared pool of this many workers (`batch.encode_workers`); 0: on the calling thread. */
  encodeWorkers: number;
  /** COG: the backend's COG keys, parsed. */
  cog?: CogOptions;
}

/** A raster format: one scene in, one object out, streamed (COG). */
export interface RasterFormat {
  /** The catalog's `format`. */
  readonly format: string;
  readonly extension: string;
  readonly contentType: string;
  readonly codec: { name: string; level: number | null };
  readonly options: CogOptions;
  open(scene: CogScene, settings: CogWriterSettings): CogWriter;
}

/**
 * The format registry: (record kind, format) → encoder, loaded on first use. A tier's backend
 * names its `format`; the writer, the mover and the read path ask here for the encoder of each
 * kind of record. COG stores raster scenes: its entry is a RasterFormat, and as a batch encoder
 * (a primary backend with format cog that is also given points) it refuses with a clear error.
 */
const geoParquet = async ({ compression, rowGroupSize, encodeWorkers }: FormatOptions): Promise<Encoder> =>
  new (await import('./parquet/geoparquet.js')).GeoParquetEncoder({ compression, rowGroupSize }, encodeWorkers);

const COG_CONTENT_TYPE = 'image/tiff; application=geotiff; profile=cloud-optimized';

async function cogFormat(options: CogOptions): Promise<RasterFormat> {
  const { CogWriter } = await import('./cog/writer.js');
  return {
    format: 'cog',
    extension: '.tif',
    contentType: COG_CONTENT_TYPE,
    codec: { name: options.compression.toLowerCase(), level: options.level },
    options,
    open: (scene, settings) => new CogWriter(scene, options, settings),
  };
}

/** A COG backend's batch encoder: it keeps rasters only, so a batch of records sent there fails with what to change. */
function refusingEncoder(raster: RasterFormat): Encoder {
  const refuse = (): never => {
    throw new EncodeError('format cog keeps raster scenes only: route point and vector records to a tier with a parquet backend (or give this tier a vector_backend)', {
      context: { stage: 'encode', format: 'cog' },
    });
  };
  return {
    format: raster.format, extension: raster.extension, contentType: raster.contentType, codec: raster.codec,
    encode: async () => refuse(),
    decode: () => refuse(),
    close: async () => undefined,
  };
}

const cog = { kinds: ['raster'] as const, load: async (o: FormatOptions) => refusingEncoder(await cogFormat(o.cog!)), raster: (o: CogOptions) => cogFormat(o) };

const formats: Record<string, { kinds: readonly StoredKind[]; load(options: FormatOptions): Promise<Encoder>; raster?: (options: CogOptions) => Promise<RasterFormat> }> = {
  parquet: { kinds: ['point', 'vector'], load: geoParquet },
  geoparquet: { kinds: ['point', 'vector'], load: geoParquet },
  cog,
  'cloud-optimized-geotiff': cog,
};

function entryOf(kind: StoredKind, format: string) {
  const entry = formats[format];
  if (entry === undefined) throw new ConfigError(`format ${format} is not known; formats: ${Object.keys(formats).join(', ')}`);
  if (!entry.kinds.includes(kind)) throw new ConfigError(`format ${format} does not store ${kind} records (it stores ${entry.kinds.join(', ')})`);
  return entry;
}

/** The batch encoder of a backend's format; `kind: raster` gives a COG backend's (refusing) batch encoder. */
export async function encoderFor(kind: StoredKind, format: string, options: FormatOptions): Promise<Encoder> {
  return entryOf(kind, format).load(options);
}

/** The raster format of a backend (`cog`, `cloud-optimized-geotiff`) with its COG options. */
export async function rasterFormatFor(format: string, options: CogOptions): Promise<RasterFormat> {
  const entry = entryOf('raster', format);
  return entry.raster!(options);
}
