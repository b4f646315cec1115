import { z } from 'zod';
import { zarrShape } from '../../src/config/zarr.js';
import { cogKeyShape, nonEmpty, objectLayoutShape, size, retryShape } from '../../src/config/common.js';

/** `type: local_file` — LocalFileStorage: a folder on a local file system. */
export const localFileBackendSchema = z
  .object({
    type: z.literal('local_file'),
    /** Root folder of the tier; created if missing. */
    base_path: nonEmpty,
    ...objectLayoutShape,
    // format: zarr (the spec's ZarrStorage keys).
    ...zarrShape,
    // format: cog (the spec's COGStorage keys).
    ...cogKeyShape,
    /** File mode as the spec writes it (`rw-r--r--`) or octal (`0644`). */
    permissions: z
      .string()
      .regex(/^([r-][w-][x-]){3}$|^0?[0-7]{3}$/, 'expected rwxrwxrwx letters like "rw-r--r--" or octal like "0644"')
      .default('rw-r--r--'),
    ...retryShape,
  })
  .strict();
export type LocalFileBackendConfig = z.output<typeof localFileBackendSchema>;

/**
 * `type: zarr` — the spec's ZarrStorage: Zarr stores in a local folder (`store_path`), one per
 * memory type and partition (`{memory type}/{file_organization}.zarr`). A local_file backend
 * with `format: zarr` is the same.
 */
export const zarrBackendSchema = z
  .object({
    type: z.literal('zarr'),
    store_path: nonEmpty,
    file_organization: z.string().default('year/month/dataset'),
    /** Chunk codec: zstd (default), gzip, lz4, blosc (zstd inside, byte shuffle), none. */
    compression: z.enum(['zstd', 'gzip', 'lz4', 'blosc', 'none']).optional(),
    ...zarrShape,
    permissions: localFileBackendSchema.shape.permissions,
    ...retryShape,
  })
  .strict();
export type ZarrBackendConfig = z.output<typeof zarrBackendSchema>;

/**
 * `type: cog` — the spec's COGStorage: Cloud-Optimized GeoTIFFs in a local folder. The same
 * LocalFileStorage as local_file, with `format: cog` implied and the spec's defaults
 * (`organization: sensor/year/month`).
 */
export const cogStorageSchema = z
  .object({
    type: z.literal('cog'),
    base_path: nonEmpty,
    organization: z.string().default('sensor/year/month'),
    compression: z.enum(['DEFLATE', 'ZSTD', 'LZW', 'NONE']).optional(),
    ...cogKeyShape,
    permissions: localFileBackendSchema.shape.permissions,
    ...retryShape,
  })
  .strict();
export type CogStorageConfig = z.output<typeof cogStorageSchema>;

/** `type: file` — replays NDJSON files (one record per line). */
export const fileSourceSchema = z
  .object({
    type: z.literal('file'),
    /** A file, or a glob in the file name part (`data/*.ndjson`). */
    path: nonEmpty,
    format: z.literal('ndjson').default('ndjson'),
    /** Lines longer than this go to the dead letter as `too_large`. */
    max_record_bytes: size.default(1024 * 1024),
  })
  .strict();
export type FileSourceConfig = z.output<typeof fileSourceSchema>;

/** `type: local_file` dead letter — NDJSON appended to a file, fsynced before records are acked. */
export const localFileDeadLetterSchema = z
  .object({
    type: z.literal('local_file'),
    path: nonEmpty,
    ...retryShape,
  })
  .strict();
export type LocalFileDeadLetterConfig = z.output<typeof localFileDeadLetterSchema>;

export function parsePermissions(text: string): number {
  if (/^0?[0-7]{3}$/.test(text)) return parseInt(text, 8);
  let mode = 0;
  for (let i = 0; i < 9; i++) if (text[i] !== '-') mode |= 1 << (8 - i);
  return mode;
}
