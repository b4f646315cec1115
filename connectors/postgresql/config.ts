import { z } from 'zod';
import { nonEmpty, objectLayoutShape, retryShape } from '../../src/config/common.js';

/**
 * The fields of PostgreSQLStorage and PostGISStorage (the spec's names, snake_case). Plain zod
 * objects (no refinements) so the pipeline can put them in its discriminated union; the rules
 * that span several keys are checked by `postgresqlConfigProblems` when the storage is built.
 */
const postgresqlShape = {
  /**
   * `postgresql://user:password@host:port/database` (write `${DATABASE_URL}` in the YAML). Optional:
   * without it node-postgres takes the standard PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE.
   */
  connection_string: nonEmpty.optional(),
  /** Schema of the tables (created if missing). The spec's vector backend uses `vector_data`. */
  schema: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'expected a lower-case identifier (a-z, 0-9, _; at most 63 characters)')
    .default('public'),
  /** Geometry columns (PostGIS) on the record tables; `CREATE EXTENSION postgis` if missing. */
  postgis_enabled: z.boolean().default(true),
  /** SRID of the geometry columns. Records are WGS84 lon/lat (4326); another SRID is reached with ST_Transform. */
  srid: z.number().int().positive().default(4326),
  /** A GiST index on every geometry column. */
  spatial_index: z.boolean().default(true),
  /**
   * Hypertables (TimescaleDB) chunked by `partition_interval` instead of `partitioning`. The server
   * must offer the extension; otherwise opening fails (no silent fallback).
   */
  timescaledb_enabled: z.boolean().default(false),
  /** Time partitions of the record tables on `observed_at`: declarative RANGE partitions created on demand, pg_partman, or none. */
  partitioning: z.enum(['none', 'native', 'pg_partman']).default('native'),
  /** Width of one partition (or hypertable chunk). */
  partition_interval: z.enum(['day', 'week', 'month']).default('month'),
  /** Most connections the pool opens (the spec's hot-tier name). Default 10. Not together with pool_size/max_overflow. */
  max_connections: z.number().int().positive().optional(),
  /** SQLAlchemy-style pool size (the spec's other name); the cap is pool_size + max_overflow. Default 10. */
  pool_size: z.number().int().positive().optional(),
  /** Extra connections above pool_size under load. Default 0. node-postgres closes every idle connection after 10 s, so there is no fixed core. */
  max_overflow: z.number().int().nonnegative().optional(),
  /** Make sure the postgis_topology extension exists (for topologies built over the features table); records stay simple features. */
  topology: z.boolean().default(false),
  ...objectLayoutShape,
  ...retryShape,
};

/** `type: postgresql` — PostgreSQLStorage: objects as chunked rows, records as rows with PostGIS geometry. */
export const postgresqlBackendSchema = z
  .object({
    type: z.literal('postgresql'),
    ...postgresqlShape,
  })
  .strict();
export type PostgresqlBackendConfig = z.output<typeof postgresqlBackendSchema>;

/** `type: postgis` — the spec's PostGISStorage: the same storage; `postgis_enabled` must stay true. */
export const postgisBackendSchema = z
  .object({
    type: z.literal('postgis'),
    ...postgresqlShape,
  })
  .strict();
export type PostgisBackendConfig = z.output<typeof postgisBackendSchema>;

export type PostgresqlStorageConfig = PostgresqlBackendConfig | PostgisBackendConfig;

/** What zod's defaults leave for the caller to fill in when building a config by hand. */
export type PostgresqlStorageInput = z.input<typeof postgresqlBackendSchema> | z.input<typeof postgisBackendSchema>;

export const defaultPoolSize = 10;

/** Rules across keys; each entry is `[key, message]`. Empty when the config is consistent. */
export function postgresqlConfigProblems(config: PostgresqlStorageConfig): Array<[string, string]> {
  const problems: Array<[string, string]> = [];
  if (config.max_connections !== undefined && (config.pool_size !== undefined || config.max_overflow !== undefined)) {
    problems.push(['max_connections', 'give either max_connections or pool_size/max_overflow, not both (both set the pool cap)']);
  }
  if (config.type === 'postgis' && !config.postgis_enabled) {
    problems.push(['postgis_enabled', 'type postgis (PostGISStorage) needs postgis_enabled: true; use type postgresql without PostGIS']);
  }
  if (config.timescaledb_enabled && config.partitioning === 'pg_partman') {
    problems.push(['partitioning', 'timescaledb_enabled: true partitions by hypertable chunks; pg_partman cannot manage the same tables']);
  }
  if (config.topology && !config.postgis_enabled) {
    problems.push(['topology', 'topology needs postgis_enabled: true']);
  }
  return problems;
}

/** The pool cap: max_connections, else pool_size + max_overflow. */
export function poolCap(config: PostgresqlStorageConfig): number {
  return config.max_connections ?? (config.pool_size ?? defaultPoolSize) + (config.max_overflow ?? 0);
}
