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
 * the file format of the tier's objects and how their keys are laid out.
 */
export const objectLayoutShape = {
  format: z.enum(['parquet', 'geoparquet']).default('parquet'),
  /** A named layout (year/month/dataset, sensor/year/month, hierarchical) or a {token} template. */
  file_organization: z.string().default('year/month/dataset'),
};

/** The format names of Cloud-Optimized GeoTIFF (`cog` is the catalog's). */
export const COG_FORMATS = ['cog', 'cloud-optimized-geotiff'] as const;

/**
 * The spec's COGStorage keys, as an object store backend takes them with `format: cog`. Only
 * their shape is checked here; the pipeline schema checks them with the COG encoder's own
 * options schema (src/encoders/cog/config.ts) and refuses them on other formats.
 */
export const cogKeyShape = {
  overviews: z.union([z.boolean(), z.number()]).optional(),
  compression: z.string().optional(),
  blocksize: z.union([z.number(), z.tuple([z.number(), z.number()])]).optional(),
  predictor: z.number().optional(),
  overview_resampling: z.string().optional(),
  level: z.number().nullable().optional(),
};
export const COG_KEYS = Object.keys(cogKeyShape) as (keyof typeof cogKeyShape)[];

/**
 * Fields of the object stores that keep rasters too (local_file, s3, gcs, azure_blob): the
 * layout, plus `format: cog` with its keys, and the spec's `organization` (= file_organization).
 */
export const objectStoreLayoutShape = {
  format: z.enum(['parquet', 'geoparquet', ...COG_FORMATS]).default('parquet'),
  file_organization: z.string().default('year/month/dataset'),
  /** The spec's COGStorage name for file_organization: one of them, not both. */
  organization: z.string().optional(),
  ...cogKeyShape,
};

/**
 * `retry:` of every backend, record store, index, catalog and dead-letter sink: how long a call
 * that fails with a retriable error (connection refused or reset, timeout, 429, 5xx, a restarting
 * database) is retried, with exponential backoff and jitter, before the run fails. Errors that
 * are not retriable (bad credentials, a missing bucket, invalid data) fail at once whatever this
 * says. While a sink retries, reading waits (batch.max_in_flight_bytes), so memory stays bounded.
 */
export const retryPolicy = z
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
  })
  .default({});
export type RetryPolicyConfig = z.output<typeof retryPolicy>;

/** The `retry` key, spread into each connector's schema next to its own keys. */
export const retryShape = { retry: retryPolicy };
