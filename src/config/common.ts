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
