import type { GeoJsonGeometry, PointRecord, VectorRecord } from '../../src/core/record.js';
import { StorageError } from '../../src/core/errors.js';
import { connector } from './server.js';

/**
 * How records map to rows. Each table lists its columns once, with the SQL type and how the value
 * comes from a record, so the DDL, the bulk INSERT and the row reader cannot drift apart.
 * Besides these, every row has object_key, memory_type and observed_at (timestamptz, from
 * time_us), and `geom` (PostGIS, generated from the exact columns) when PostGIS is on.
 */
export interface Column<R> {
  name: string;
  /** The column's type; the bulk INSERT casts its array parameter to `<type>[]`. */
  type: string;
  notNull: boolean;
  value: (record: R) => string | number | null;
}

const shared = <R extends PointRecord | VectorRecord>(): Column<R>[] => [
  { name: 'dataset', type: 'text', notNull: true, value: (r) => r.dataset },
  { name: 'source', type: 'text COLLATE "C"', notNull: true, value: (r) => r.position.source },
  { name: 'source_partition', type: 'integer', notNull: true, value: (r) => r.position.partition },
  { name: 'source_offset', type: 'bigint', notNull: true, value: (r) => r.position.offset },
  { name: 'record_id', type: 'text', notNull: false, value: (r) => r.id },
  { name: 'variable', type: 'text', notNull: false, value: (r) => r.variable },
  /** Microseconds since the epoch: the exact time (observed_at is derived from it). */
  { name: 'time_us', type: 'bigint', notNull: true, value: (r) => r.timeUs },
  { name: 'kafka_key', type: 'text', notNull: false, value: (r) => r.key ?? null },
  { name: 'payload_size', type: 'integer', notNull: true, value: (r) => r.size },
];

export const pointColumns: Column<PointRecord>[] = [
  ...shared<PointRecord>(),
  { name: 'lon', type: 'double precision', notNull: true, value: (r) => r.lon },
  { name: 'lat', type: 'double precision', notNull: true, value: (r) => r.lat },
  { name: 'value', type: 'double precision', notNull: true, value: (r) => r.value },
  { name: 'unit', type: 'text', notNull: false, value: (r) => r.unit },
  { name: 'quality', type: 'text', notNull: false, value: (r) => r.quality },
  { name: 'station', type: 'text', notNull: false, value: (r) => r.station },
  { name: 'elevation', type: 'double precision', notNull: false, value: (r) => r.elevation },
  /** JSON text as received (jsonb would reorder keys and change the text). */
  { name: 'attrs', type: 'text', notNull: false, value: (r) => r.attrs },
];

export const featureColumns: Column<VectorRecord>[] = [
  ...shared<VectorRecord>(),
  { name: 'value', type: 'double precision', notNull: false, value: (r) => r.value },
  { name: 'properties', type: 'text', notNull: false, value: (r) => r.properties },
  /**
   * The GeoJSON geometry as JSON text: exact coordinates (JSON numbers round-trip a double), any
   * of 2 to 4 dimensions, and readable without PostGIS. `geom` is generated from it.
   */
  { name: 'geometry_json', type: 'text', notNull: true, value: (r) => JSON.stringify(r.geometry) },
  { name: 'bbox_min_lon', type: 'double precision', notNull: true, value: (r) => r.bbox[0] },
  { name: 'bbox_min_lat', type: 'double precision', notNull: true, value: (r) => r.bbox[1] },
  { name: 'bbox_max_lon', type: 'double precision', notNull: true, value: (r) => r.bbox[2] },
  { name: 'bbox_max_lat', type: 'double precision', notNull: true, value: (r) => r.bbox[3] },
];

/**
 * One column of many rows as a PostgreSQL array literal, for `unnest($n::type[])`: numbers bare,
 * text quoted and escaped, null as NULL. Faster than pg's generic array conversion.
 */
export function arrayLiteral(values: ReadonlyArray<string | number | null>): string {
  const parts = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined) parts[i] = 'NULL';
    else if (typeof v === 'number') parts[i] = String(v);
    else parts[i] = v.includes('"') || v.includes('\\') ? `"${v.replace(/[\\"]/g, '\\$&')}"` : `"${v}"`;
  }
  return `{${parts.join(',')}}`;
}

/** A row as pg returns it: BIGINT as decimal text, DOUBLE PRECISION as number. */
type Row = Record<string, string | number | null>;

export function pointFromRow(row: Row): PointRecord {
  return {
    kind: 'point',
    position: { source: row.source as string, partition: row.source_partition as number, offset: safeInteger(row.source_offset) },
    size: row.payload_size as number,
    id: row.record_id as string | null,
    dataset: row.dataset as string,
    variable: row.variable as string,
    timeUs: safeInteger(row.time_us),
    key: row.kafka_key as string | null,
    lon: row.lon as number,
    lat: row.lat as number,
    value: row.value as number,
    unit: row.unit as string | null,
    quality: row.quality as string | null,
    station: row.station as string | null,
    elevation: row.elevation as number | null,
    attrs: row.attrs as string | null,
  };
}

export function featureFromRow(row: Row): VectorRecord {
  return {
    kind: 'vector',
    position: { source: row.source as string, partition: row.source_partition as number, offset: safeInteger(row.source_offset) },
    size: row.payload_size as number,
    id: row.record_id as string | null,
    dataset: row.dataset as string,
    variable: row.variable as string | null,
    timeUs: safeInteger(row.time_us),
    key: row.kafka_key as string | null,
    geometry: JSON.parse(row.geometry_json as string) as GeoJsonGeometry,
    properties: row.properties as string | null,
    value: row.value as number | null,
    bbox: [row.bbox_min_lon as number, row.bbox_min_lat as number, row.bbox_max_lon as number, row.bbox_max_lat as number],
  };
}

/** BIGINT arrives as text; times and offsets the engine writes are safe integers. */
export function safeInteger(value: string | number | null): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) {
    throw new StorageError(`${connector}: stored integer ${String(value)} is not a safe JavaScript integer`, { context: { connector } });
  }
  return n;
}
