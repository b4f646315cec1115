import { z } from 'zod';

/**
 * GeoJSONStorage's keys on an object backend with `format: geojson` (besides `organization`, the
 * spec's name for file_organization). The pipeline schema rejects keys geojson does not take
 * (src/encoders/registry.ts); this gives the defaults and the allowed values.
 */
export const geoJsonConfig = z
  .object({
    /** Whole-file gzip (`.geojson.gz`, readable through GDAL's /vsigzip/), or none. */
    compression: z.enum(['gzip', 'none']).default('none'),
    /** Refuse features RFC 7946 does not allow (they go to the dead letter as bad_geometry). */
    validation: z.boolean().default(true),
    layout: z.enum(['feature_collection', 'text_sequence']).default('feature_collection'),
  })
  .strict();
export type GeoJsonConfig = z.output<typeof geoJsonConfig>;
