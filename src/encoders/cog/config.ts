import { z } from 'zod';

/**
 * The encoding options of the spec's COGStorage (memory_storage.rst):
 * `COGStorage(base_path, organization="sensor/year/month", overviews=True, compression="DEFLATE",
 * blocksize=(256, 256), predictor=2)`. base_path and organization belong to the storage layer.
 * Defaults are GDAL's COG driver's except where the spec says otherwise (compression, blocksize,
 * predictor, overviews); see README.md for each one.
 */
export const COG_COMPRESSIONS = ['DEFLATE', 'ZSTD', 'LZW', 'NONE'] as const;
export type CogCompression = (typeof COG_COMPRESSIONS)[number];

/** GDAL's defaults: ZLEVEL 6 for DEFLATE, ZSTD_LEVEL 9 for ZSTD. */
export const DEFAULT_LEVEL: Record<'DEFLATE' | 'ZSTD', number> = { DEFLATE: 6, ZSTD: 9 };
const LEVEL_RANGE: Record<'DEFLATE' | 'ZSTD', [number, number]> = { DEFLATE: [1, 9], ZSTD: [1, 22] };

const blockSide = z
  .number()
  .int()
  .min(16)
  .max(4096)
  .refine((n) => n % 16 === 0, 'expected a multiple of 16 (TIFF tiles)');

export const cogOptionsSchema = z
  .object({
    /** true: GDAL's rule (halve until the overview fits in one block); false: none; a number: that many levels. */
    overviews: z.union([z.boolean(), z.number().int().min(0).max(30)]).default(true),
    compression: z.enum(COG_COMPRESSIONS).default('DEFLATE'),
    /** [width, height] of a tile; a single number means a square tile. */
    blocksize: z
      .union([blockSide, z.tuple([blockSide, blockSide])])
      .default([256, 256])
      .transform((b): [number, number] => (typeof b === 'number' ? [b, b] : b)),
    /** 1 none, 2 horizontal differencing (any type), 3 floating point (float32/float64 only). Default 2, or 1 with NONE. */
    predictor: z.union([z.literal(1), z.literal(2), z.literal(3)]).optional(),
    /** GDAL's default (cubic) is not offered: average is the closest smoothing filter. */
    overview_resampling: z.enum(['nearest', 'average']).default('average'),
    /** Codec level: DEFLATE 1–9 (default 6), ZSTD 1–22 (default 9); not for LZW or NONE (null = default). */
    level: z.number().int().nullable().optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (o.compression === 'NONE' && o.predictor !== undefined && o.predictor !== 1) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['predictor'], message: 'a predictor needs a compression (libtiff ignores it with NONE)' });
    }
    if (o.level !== undefined && o.level !== null) {
      if (o.compression !== 'DEFLATE' && o.compression !== 'ZSTD') {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['level'], message: `${o.compression} has no level` });
      } else {
        const [min, max] = LEVEL_RANGE[o.compression];
        if (o.level < min || o.level > max) {
          ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['level'], message: `${o.compression} level must be ${min}–${max}` });
        }
      }
    }
  })
  .transform((o) => ({
    overviews: o.overviews,
    compression: o.compression,
    blocksize: o.blocksize,
    predictor: o.predictor ?? (o.compression === 'NONE' ? 1 : 2),
    overview_resampling: o.overview_resampling,
    level: o.compression === 'DEFLATE' || o.compression === 'ZSTD' ? (o.level ?? DEFAULT_LEVEL[o.compression]) : null,
  }));

export type CogOptionsInput = z.input<typeof cogOptionsSchema>;
export type CogOptions = z.output<typeof cogOptionsSchema>;
