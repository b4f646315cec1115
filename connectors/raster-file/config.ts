import { z } from 'zod';
import { nonEmpty, size } from '../../src/config/common.js';

const regex = (what: string) =>
  nonEmpty.superRefine((text, ctx) => {
    let pattern: RegExp;
    try {
      pattern = new RegExp(text);
    } catch (error) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `not a regular expression: ${(error as Error).message}` });
      return;
    }
    // A group that exists but never participates is fine; none at all cannot give the value.
    if (new RegExp(`${pattern.source}|`).exec('')!.length < 2) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `needs a capturing group: its first group gives the ${what}` });
    }
  });

/** `type: raster_file` — replays GeoTIFFs as raster tiles (backfills). */
export const rasterFileSourceSchema = z
  .object({
    type: z.literal('raster_file'),
    /** A file, or a glob in the file name part (`in/*.tif`). */
    path: nonEmpty,
    dataset: nonEmpty,
    variable: nonEmpty,
    /** A regular expression matched on the file name; its first group is the time (RFC 3339, extended or basic). */
    time_pattern: regex('time'),
    /** Optional: a regular expression whose first group, on the file name, is the scene id (default: the name without extension). */
    scene_id_pattern: regex('scene id').optional(),
    /** Tile side in pixels; edge tiles are smaller. */
    tile_size: z.number().int().min(16).max(4096).default(512),
    /** Tiles whose pixels exceed this (tile_size² × bands × dtype bytes) go to the dead letter as `too_large`. */
    max_record_bytes: size.default(256 * 1024 * 1024),
  })
  .strict();
export type RasterFileSourceConfig = z.output<typeof rasterFileSourceSchema>;
