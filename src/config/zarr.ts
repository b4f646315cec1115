import { z } from 'zod';
import { duration } from './common.js';

/**
 * The spec's ZarrStorage keys, taken by `type: zarr` and by every object backend with
 * `format: zarr`. Optional here (so a key given without `format: zarr` is an error, not a silent
 * default); `zarrOptions` applies the spec's defaults.
 */
/** Each key typed by its value only, so the declarations of the schemas that spread it stay small (TS7056). */
type Key<T> = z.ZodType<T | undefined, z.ZodTypeDef, unknown>;
export const zarrShape: {
  zarr_format: Key<2 | 3>;
  chunks: Key<[number, number, number]>;
  timeseries_chunks: Key<[number, number]>;
  compression_level: Key<number>;
  dimension_separator: Key<'/' | '.'>;
  time_step: Key<number>;
} = {
  /** 2 (default: GDAL 3.6 reads it well) or 3. */
  zarr_format: z.union([z.literal(2), z.literal(3)]).optional(),
  /** Raster arrays' chunk shape (time, y, x). */
  chunks: z.tuple([z.number().int().positive(), z.number().int().positive(), z.number().int().positive()]).optional(),
  /** Point time series' chunk shape (station, time). */
  timeseries_chunks: z.tuple([z.number().int().positive(), z.number().int().positive()]).optional(),
  compression_level: z.number().int().min(0).max(22).optional(),
  dimension_separator: z.enum(['/', '.']).optional(),
  /** Point time series: the width of one time step (values are binned to it). */
  time_step: duration.optional(),
};

export type ZarrCompressionName = 'zstd' | 'gzip' | 'lz4' | 'blosc' | 'none';

export const ZARR_KEYS = Object.keys(zarrShape) as (keyof typeof zarrShape)[];

export interface ZarrOptions {
  zarrFormat: 2 | 3;
  chunks: [number, number, number];
  timeseriesChunks: [number, number];
  compression: ZarrCompressionName;
  compressionLevel: number;
  dimensionSeparator: '/' | '.';
  timeStepMs: number;
}

/** `compression` is the backend's format key (src/config/common.ts), shared with the other formats; checkZarrKeys refuses the codecs Zarr has not. */
type ZarrKeys = { [K in keyof typeof zarrShape]?: z.output<(typeof zarrShape)[K]> } & { compression?: string | undefined };


/** The spec's defaults: chunks (1, 500, 500), zstd level 3, "/"; time series (64 stations, 1024 steps) of 1 hour. */
export function zarrOptions(c: ZarrKeys): ZarrOptions {
  return {
    zarrFormat: c.zarr_format ?? 2,
    chunks: c.chunks ?? [1, 500, 500],
    timeseriesChunks: c.timeseries_chunks ?? [64, 1024],
    compression: (c.compression ?? 'zstd') as ZarrCompressionName,
    compressionLevel: c.compression_level ?? 3,
    dimensionSeparator: c.dimension_separator ?? '/',
    timeStepMs: c.time_step ?? 3_600_000,
  };
}
