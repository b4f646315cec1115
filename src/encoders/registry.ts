import type { RecordKind } from '../core/record.js';
import type { CompressionConfig } from '../config/common.js';
import { ConfigError } from '../core/errors.js';
import { codecLevels } from '../compression/levels.js';
import type { CogOptions } from './cog/config.js';
import type { CogScene } from './cog/scene.js';
import type { CogWriter, CogWriterSettings } from './cog/writer.js';
import type { Encoder } from './encoder.js';

/** What a tier stores: record batches (point, vector) or raster scenes. */
export type StoredKind = RecordKind | 'raster';

/** A backend's format keys (the spec's GeoJSONStorage / ParquetStorage options), as the pipeline file gives them. */
export interface FormatKeys {
  compression?: string | undefined;
  validation?: boolean | undefined;
  layout?: string | undefined;
  partition_cols?: string[] | undefined;
  row_group_size?: number | undefined;
  page_size?: number | undefined;
  /** COG (the spec's COGStorage keys; checked by src/encoders/cog/config.ts's schema). */
  overviews?: boolean | number | undefined;
  blocksize?: number | [number, number] | undefined;
  predictor?: number | undefined;
  overview_resampling?: string | undefined;
  level?: number | null | undefined;
}

export interface FormatOptions {
  /** The tier's `compression` (formats with their own `compression` key take that first). */
  compression: CompressionConfig;
  /** Parquet: rows per row group (the tier's `parquet.row_group_size`; the backend's `row_group_size` wins). */
  rowGroupSize: number;
  /** Encode on the shared pool of this many workers (`batch.encode_workers`); 0: on the calling thread. */
  encodeWorkers: number;
  /** The backend's own format keys. */
  keys: FormatKeys;
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

interface FormatEntry {
  kinds: readonly StoredKind[];
  /** The backend keys this format takes besides `format` and `file_organization`. */
  keys: readonly (keyof FormatKeys)[];
  /**
   * Batch → one object. Absent for a store format (Zarr): its sink appends to a store that
   * grows (src/encoders/zarr/sink.ts), which the tier writer opens itself.
   */
  load?(options: FormatOptions): Promise<Encoder>;
  /** Scene → one object (COG). */
  raster?(options: CogOptions): Promise<RasterFormat>;
}

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
const cogKeys = ['compression', 'overviews', 'blocksize', 'predictor', 'overview_resampling', 'level'] as const;

/** Whole-file gzip is written at the tier's compression level (low … maximum) on gzip's scale. */
const gzipLevel = (options: FormatOptions) => codecLevels.gzip[options.compression.level]!;

const parquetKeys = ['compression', 'partition_cols', 'row_group_size', 'page_size'] as const;
const geoParquet = async ({ compression, rowGroupSize, encodeWorkers, keys }: FormatOptions): Promise<Encoder> => {
  const { GeoParquetEncoder, parquetOptions } = await import('./parquet/geoparquet.js');
  return new GeoParquetEncoder(parquetOptions(compression, rowGroupSize, keys), encodeWorkers);
};

/**
 * The format registry: (record kind, format) → encoder, loaded on first use. A tier's backend
 * names its `format` (or the storage's default_*_format gives it per kind, `resolveFormat`); the
 * writer, the mover and the read path ask here for the encoder of each kind of record. This is
 * the one list of formats: the pipeline schema checks `format` and the defaults against it, so a
 * format registered here (COG, Zarr) is accepted everywhere.
 */
const formats: Record<string, FormatEntry> = {
  parquet: { kinds: ['point', 'vector'], keys: parquetKeys, load: geoParquet },
  geoparquet: { kinds: ['point', 'vector'], keys: parquetKeys, load: geoParquet },
  geojson: {
    kinds: ['point', 'vector'],
    keys: ['compression', 'validation', 'layout'],
    load: async (options) => new (await import('./geojson/geojson.js')).GeoJsonEncoder(options.keys, gzipLevel(options)),
  },
  // Point time series (CF timeSeries) and raster arrays; its own keys are src/config/zarr.ts's.
  zarr: { kinds: ['point', 'raster'], keys: ['compression'] },
  // Raster scenes, one COG each (src/encoders/cog/); its scenes are assembled by src/pipeline/raster-scenes.
  cog: { kinds: ['raster'], keys: cogKeys, raster: cogFormat },
  csv: {
    kinds: ['point'],
    keys: ['compression'],
    load: async (options) => new (await import('./csv/csv.js')).CsvEncoder(options.keys, gzipLevel(options)),
  },
};

/** Other names of formats: the spec's development environment says `tiff` for COG. */
const aliases: Record<string, string> = { tiff: 'cog', geotiff: 'cog', 'cloud-optimized-geotiff': 'cog' };

/** Formats that are databases rather than files (the spec's `default_vector_format: postgis`): a tier stores them in a record backend of that type. */
export const DATABASE_FORMATS = ['postgis', 'postgresql', 'sqlite', 'mongodb', 'influxdb'] as const;

/** The registered name of `format` (aliases resolved). */
export function canonicalFormat(format: string): string {
  return aliases[format] ?? format;
}

export function isRegistered(format: string): boolean {
  return Object.hasOwn(formats, canonicalFormat(format));
}

export function registeredFormats(): string[] {
  return Object.keys(formats);
}

/** The formats that write one object per batch (not store formats such as Zarr). */
export function objectFormats(): string[] {
  return Object.keys(formats).filter((f) => formats[f]!.load !== undefined);
}

/** Why `format` cannot store `kind` records in an object backend, or undefined when it can. */
export function formatProblem(kind: StoredKind, format: string): string | undefined {
  const name = canonicalFormat(format);
  if ((DATABASE_FORMATS as readonly string[]).includes(name)) {
    return `${format} is a database, not a file format: give the tier a ${kind === 'vector' ? 'vector_backend' : 'backend'} of type ${name}, or name a file format`;
  }
  const entry = formats[name];
  if (entry === undefined) {
    return `format ${format}${name === format ? '' : ` (${name})`} is not registered in this build; formats: ${registeredFormats().join(', ')}`;
  }
  if (!(entry.kinds as readonly string[]).includes(kind)) return `format ${format} does not store ${kind} records (it stores ${entry.kinds.join(', ')})`;
  return undefined;
}

/** The format keys set on a backend that `format` does not take. */
export function foreignKeys(format: string, keys: FormatKeys): string[] {
  const entry = formats[canonicalFormat(format)];
  if (entry === undefined) return [];
  return (Object.keys(keys) as (keyof FormatKeys)[]).filter((k) => keys[k] !== undefined && !entry.keys.includes(k));
}

/** The storage section's defaults per record kind (the spec's default_*_format). */
export interface DefaultFormats {
  default_vector_format: string;
  default_raster_format: string;
  default_timeseries_format: string;
}

/**
 * The format a backend stores `kind` records in: its own `format` when it names one, else the
 * storage's default for the kind (a point record is a time series).
 */
export function resolveFormat(kind: StoredKind, backendFormat: string | undefined, defaults: DefaultFormats): { format: string; from: 'format' | keyof DefaultFormats } {
  if (backendFormat !== undefined) return { format: backendFormat, from: 'format' };
  const from = kind === 'point' ? 'default_timeseries_format' : kind === 'vector' ? 'default_vector_format' : 'default_raster_format';
  return { format: defaults[from], from };
}

export async function encoderFor(kind: RecordKind, format: string, options: FormatOptions): Promise<Encoder> {
  const problem = formatProblem(kind, format);
  if (problem !== undefined) throw new ConfigError(problem);
  const { load } = formats[canonicalFormat(format)]!;
  if (load === undefined) throw new ConfigError(`format ${format} does not write one object per record batch (a store or scene format): its tier opens its own sink`);
  return load(options);
}

/** The raster format of a backend (`cog`, `cloud-optimized-geotiff`) with its COG options. */
export async function rasterFormatFor(format: string, options: CogOptions): Promise<RasterFormat> {
  const problem = formatProblem('raster', format);
  if (problem !== undefined) throw new ConfigError(problem);
  const { raster } = formats[canonicalFormat(format)]!;
  if (raster === undefined) throw new ConfigError(`format ${format} does not write one object per raster scene`);
  return raster(options);
}
