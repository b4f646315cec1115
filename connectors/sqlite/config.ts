import { z } from 'zod';
import { duration, nonEmpty, objectLayoutShape, retryShape } from '../../src/config/common.js';

/**
 * `type: sqlite` — SQLiteStorage: one SQLite database file that keeps objects (chunked blobs)
 * and records (rows in `earthmem_points` / `earthmem_features`, with SpatiaLite geometry columns
 * and spatial indexes when `spatialite_enabled`).
 */
export const sqliteBackendSchema = z
  .object({
    type: z.literal('sqlite'),
    /** The database file; its folder is created if missing. A file, not `:memory:` (readers and the writer use separate connections). */
    database_path: nonEmpty.refine((path) => path !== ':memory:' && !path.startsWith('file::memory:'), {
      message: 'expected a database file path; an in-memory database cannot be shared by the reader and writer connections',
    }),
    ...objectLayoutShape,
    /** Load SpatiaLite: geometry columns with a spatial index on the record tables. */
    spatialite_enabled: z.boolean().default(false),
    /** SRID of the geometry columns. Records are WGS84 lon/lat (4326); another SRID means geometries are transformed into it. */
    srid: z.number().int().positive().default(4326),
    /** Only journal modes that keep a commit durable. */
    journal_mode: z.enum(['wal', 'delete', 'truncate', 'persist']).default('wal'),
    /** How long a writer waits for another connection's lock before failing with a retriable error. */
    busy_timeout: duration.default('5s'),
    /** Path of mod_spatialite; default: $SPATIALITE_MODULE, else `mod_spatialite` from the system library path. */
    spatialite_module: nonEmpty.optional(),
    ...retryShape,
  })
  .strict();
export type SqliteBackendConfig = z.output<typeof sqliteBackendSchema>;
