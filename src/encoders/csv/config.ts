import { z } from 'zod';

/**
 * CSV's keys on an object backend with `format: csv` (time series: point records only). The
 * pipeline schema rejects keys csv does not take, and vector records routed to it
 * (src/encoders/registry.ts); this gives the defaults and the allowed values.
 */
export const csvConfig = z
  .object({
    /** Whole-file gzip (`.csv.gz`: DuckDB's read_csv and GDAL's /vsigzip/ open it), or none. */
    compression: z.enum(['gzip', 'none']).default('none'),
  })
  .strict();
export type CsvConfig = z.output<typeof csvConfig>;
