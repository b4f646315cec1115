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
  format: z.enum(['parquet', 'geoparquet', 'zarr']).default('parquet'),
  /** A named layout (year/month/dataset, sensor/year/month, hierarchical) or a {token} template. */
  file_organization: z.string().default('year/month/dataset'),
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
