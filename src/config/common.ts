import { z } from 'zod';
import { parseDuration, parseSize } from './units.js';

/** Schema pieces shared by the pipeline file and every connector's config schema. */

export const size = z
  .union([z.number(), z.string()])
  .transform((value, ctx) => {
    const bytes = parseSize(value);
    if (bytes === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'expected a size such as 1048576, "64MiB" or "50GB"' });
      return z.NEVER;
    }
    return bytes;
  });

export const duration = z
  .union([z.number(), z.string()])
  .transform((value, ctx) => {
    const ms = parseDuration(value);
    if (ms === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'expected a duration such as 500ms, "5s", "30 days" or "10years"' });
      return z.NEVER;
    }
    return ms;
  });

export const nonEmpty = z.string().min(1, 'expected a non-empty string');

export const compressionAlgorithm = z.enum(['zstd', 'lz4', 'gzip', 'snappy', 'brotli', 'none']);
/** A backend's format `compression`: the tier codecs, Zarr's blosc, COG's TIFF codecs (each format checks its own, src/pipeline/schema.ts). */
export const formatCompression = z.enum([...compressionAlgorithm.options, 'blosc', 'DEFLATE', 'ZSTD', 'LZW', 'NONE']);
export const compressionLevel = z.enum(['low', 'medium', 'high', 'maximum']);

/** A tier's `compression`: `{algorithm, level}`, or the spec's `compression: true` (zstd, medium). */
export const compression = z
  .union([
    z.boolean(),
    z
      .object({
        algorithm: compressionAlgorithm.default('zstd'),
        level: compressionLevel.default('medium'),
      })
      .strict(),
  ])
  .transform((value) =>
    typeof value === 'boolean'
      ? { algorithm: value ? ('zstd' as const) : ('none' as const), level: 'medium' as const }
      : value,
  );
export type CompressionConfig = z.output<typeof compression>;

/**
 * Fields every object-store backend takes (local_file, network_file, s3, gcs, azure_blob …):
 * the file format of the tier's objects, how their keys are laid out, and the format's own keys
 * (the spec's GeoJSONStorage and ParquetStorage options). Which keys a format takes, and which
 * formats exist, is the format registry's (src/encoders/registry.ts): the pipeline schema checks
 * them there, so a format registered later needs no change here.
 */
export const objectLayoutShape: ObjectLayoutShape = {
  /** parquet, geoparquet, geojson, csv … Unset: the storage's default_*_format for each kind of record. */
  format: nonEmpty.optional(),
  /** A named layout (year/month/dataset, sensor/year/month, category/subcategory, hierarchical) or a {token} template. */
  file_organization: z.string().optional(),
  /** GeoJSONStorage's name for file_organization. */
  organization: z.string().optional(),
  /** The format's own compression (geojson, csv: gzip | none; parquet: any codec). Unset: the tier's `compression`. */
  compression: formatCompression.optional(),
  /** GeoJSON: check features against RFC 7946 before writing (default true). */
  validation: z.boolean().optional(),
  /** GeoJSON: one FeatureCollection per object, or RFC 8142 GeoJSON Text Sequences (`.geojsons`). */
  layout: z.enum(['feature_collection', 'text_sequence']).optional(),
  /** Parquet: Hive-style `column=value` directories under the file_organization. */
  partition_cols: z.array(z.enum(['year', 'month', 'day', 'variable', 'dataset', 'station'])).min(1).optional(),
  /** Parquet: rows per row group (overrides the tier's parquet.row_group_size). */
  row_group_size: z.number().int().positive().optional(),
  /** Parquet: the data page size limit in bytes. */
  page_size: size.optional(),
};

export type CompressionAlgorithmName = z.output<typeof compressionAlgorithm>;
export type FormatCompressionName = z.output<typeof formatCompression>;
export type GeoJsonLayout = 'feature_collection' | 'text_sequence';
export type PartitionColumn = 'year' | 'month' | 'day' | 'variable' | 'dataset' | 'station';
type Optional<T, In = T> = z.ZodOptional<z.ZodType<T, z.ZodTypeDef, In>>;
/** Named types keep the pipeline schema's declaration within what tsc serializes. */
export interface ObjectLayoutShape {
  format: Optional<string>;
  file_organization: Optional<string>;
  organization: Optional<string>;
  compression: Optional<FormatCompressionName>;
  validation: Optional<boolean>;
  layout: Optional<GeoJsonLayout>;
  partition_cols: Optional<PartitionColumn[]>;
  row_group_size: Optional<number>;
  page_size: Optional<number, number | string>;
}

/** The key layout of a backend's objects: `organization` is GeoJSONStorage's name for `file_organization`. */
export function organizationOf(backend: { file_organization?: string | undefined; organization?: string | undefined }): string {
  return backend.file_organization ?? backend.organization ?? 'year/month/dataset';
}

/** The format names of Cloud-Optimized GeoTIFF (`cog` is the catalog's). */
export const COG_FORMATS = ['cog', 'cloud-optimized-geotiff'] as const;

/**
 * The spec's COGStorage keys besides `compression` (the format key every format shares), as an
 * object store backend takes them with `format: cog`. Only their shape is checked here; the
 * pipeline schema checks them with the COG encoder's own options schema
 * (src/encoders/cog/config.ts) and refuses them on other formats.
 */
export const cogKeyShape = {
  overviews: z.union([z.boolean(), z.number()]).optional(),
  blocksize: z.union([z.number(), z.tuple([z.number(), z.number()])]).optional(),
  predictor: z.number().optional(),
  overview_resampling: z.string().optional(),
  level: z.number().nullable().optional(),
};
/** The COG keys, `compression` included. */
export const COG_KEYS = ['compression', ...Object.keys(cogKeyShape)] as ('compression' | keyof typeof cogKeyShape)[];

/**
 * `retry:` of every backend, record store, index, catalog and dead-letter sink: how long a call
 * that fails with a retriable error (connection refused or reset, timeout, 429, 5xx, a restarting
 * database) is retried, with exponential backoff and jitter, before the run fails. Errors that
 * are not retriable (bad credentials, a missing bucket, invalid data) fail at once whatever this
 * says. While a sink retries, reading waits (batch.max_in_flight_bytes), so memory stays bounded.
 */
const retryPolicySchema = z
  .object({
    /** The first wait after a failure. */
    initial_backoff: duration.default('100ms'),
    /** Waits double up to this. */
    max_backoff: duration.default('10s'),
    /** Give up once this much time has passed since the first attempt; 0 = no retry. Ten minutes ride out a server restart or failover. */
    max_elapsed: duration.default('10m'),
  })
  .strict()
  .superRefine((retry, ctx) => {
    if (retry.initial_backoff <= 0) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['initial_backoff'], message: 'must be longer than 0' });
    if (retry.max_backoff < retry.initial_backoff) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['max_backoff'], message: 'must be at least initial_backoff' });
    }
  });
export type RetryPolicyConfig = z.output<typeof retryPolicySchema>;
/** Named types: every connector spreads it, and spelled out it would be repeated in every declaration. */
export const retryPolicy: z.ZodDefault<z.ZodType<RetryPolicyConfig, z.ZodTypeDef, z.input<typeof retryPolicySchema>>> = retryPolicySchema.default({});

/** The `retry` key, spread into each connector's schema next to its own keys. */
export const retryShape = { retry: retryPolicy };
