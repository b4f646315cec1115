import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { declareCapabilities, type Backend, type Body, type ObjectStat, type PutOptions } from '../../src/core/backend.js';
import { partsOf } from '../../src/core/body.js';
import { ConfigError, NotFoundError, StorageError } from '../../src/core/errors.js';
import type { GeoJsonGeometry, ObservationRecord, PointRecord, VectorRecord } from '../../src/core/record.js';
import type { RecordSet, RecordStore, RecordWriteResult } from '../../src/core/record-store.js';
import { storageFailure } from '../../src/core/storage-errors.js';
import type { SqliteBackendConfig } from './config.js';

const connector = 'sqlite';
/** Objects are stored as rows of this many bytes (the last one shorter), so no row holds a whole large object. */
const CHUNK_BYTES = 1024 * 1024;
/** Rows per page when listing, so a listing never holds a statement open across a `yield`. */
const LIST_PAGE = 1000;
/** SRID of the coordinates records carry (WGS84 lon/lat). */
const WGS84 = 4326;

const POINTS = 'earthmem_points';
const FEATURES = 'earthmem_features';

const baseSchema = `
CREATE TABLE IF NOT EXISTS earthmem_objects (
  key TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  chunk_bytes INTEGER NOT NULL,
  modified_ms INTEGER NOT NULL,
  content_type TEXT
);
CREATE TABLE IF NOT EXISTS earthmem_object_chunks (
  key TEXT NOT NULL,
  seq INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (key, seq)
);
CREATE TABLE IF NOT EXISTS earthmem_record_sets (
  key TEXT PRIMARY KEY,
  memory_type TEXT NOT NULL,
  dataset TEXT NOT NULL,
  rows INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  written_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ${POINTS} (
  object_key TEXT NOT NULL,
  source TEXT NOT NULL,
  source_partition INTEGER NOT NULL,
  source_offset INTEGER NOT NULL,
  size INTEGER NOT NULL,
  memory_type TEXT NOT NULL,
  dataset TEXT NOT NULL,
  record_id TEXT,
  variable TEXT NOT NULL,
  time_us INTEGER NOT NULL,
  lon REAL NOT NULL,
  lat REAL NOT NULL,
  value REAL NOT NULL,
  unit TEXT,
  quality TEXT,
  station TEXT,
  elevation REAL,
  attrs TEXT,
  record_key TEXT
);
CREATE INDEX IF NOT EXISTS ${POINTS}_object ON ${POINTS} (object_key, source, source_partition, source_offset);
CREATE INDEX IF NOT EXISTS ${POINTS}_time ON ${POINTS} (time_us);
CREATE TABLE IF NOT EXISTS ${FEATURES} (
  object_key TEXT NOT NULL,
  source TEXT NOT NULL,
  source_partition INTEGER NOT NULL,
  source_offset INTEGER NOT NULL,
  size INTEGER NOT NULL,
  memory_type TEXT NOT NULL,
  dataset TEXT NOT NULL,
  record_id TEXT,
  variable TEXT,
  time_us INTEGER NOT NULL,
  geometry_json TEXT NOT NULL,
  properties TEXT,
  value REAL,
  bbox_min_lon REAL NOT NULL,
  bbox_min_lat REAL NOT NULL,
  bbox_max_lon REAL NOT NULL,
  bbox_max_lat REAL NOT NULL,
  record_key TEXT
);
CREATE INDEX IF NOT EXISTS ${FEATURES}_object ON ${FEATURES} (object_key, source, source_partition, source_offset);
CREATE INDEX IF NOT EXISTS ${FEATURES}_time ON ${FEATURES} (time_us);
`;

const positionColumns = 'source, source_partition, source_offset, size, memory_type, dataset, record_id, variable, time_us, record_key';
const pointColumns = `${positionColumns}, lon, lat, value, unit, quality, station, elevation, attrs`;
const featureColumns = `${positionColumns}, geometry_json, properties, value, bbox_min_lon, bbox_min_lat, bbox_max_lon, bbox_max_lat`;
const byPosition = 'ORDER BY source, source_partition, source_offset';

interface ObjectRow {
  key: string;
  size: number;
  chunk_bytes: number;
  modified_ms: number;
}

interface RecordRow {
  object_key?: string;
  source: string;
  source_partition: number;
  source_offset: number;
  size: number;
  record_id: string | null;
  dataset: string;
  variable: string | null;
  time_us: number;
  record_key: string | null;
}
interface PointRow extends RecordRow {
  lon: number;
  lat: number;
  value: number;
  unit: string | null;
  quality: string | null;
  station: string | null;
  elevation: number | null;
  attrs: string | null;
}
interface FeatureRow extends RecordRow {
  geometry_json: string;
  properties: string | null;
  value: number | null;
  bbox_min_lon: number;
  bbox_min_lat: number;
  bbox_max_lon: number;
  bbox_max_lat: number;
}

/** A record found by a spatial query, with the key it was written under. */
export interface FoundRecord {
  objectKey: string;
  record: ObservationRecord;
}

export interface RecordQuery {
  /** [minLon, minLat, maxLon, maxLat] in WGS84; a record matches when its geometry intersects it. */
  bbox: [number, number, number, number];
  /** Inclusive time bounds, microseconds since the epoch. */
  fromUs?: number;
  toUs?: number;
}

/**
 * SQLiteStorage: one SQLite file holding objects (1 MiB blob chunks, one transaction per put) and
 * records (`earthmem_points`, `earthmem_features`; SpatiaLite geometry columns with an R*Tree
 * spatial index when `spatialite_enabled`). Exact values live in plain columns (lon/lat REAL, the
 * GeoJSON text), so records read back equal field by field; the geometry columns serve queries.
 *
 * Two connections: the writer (all writes, serialized here because a SQLite connection holds one
 * transaction at a time, and a streamed put keeps its transaction open across awaits) and a
 * reader, which under WAL sees the last committed state and never a half-written put.
 */
export class SQLiteStorage implements Backend, RecordStore {
  readonly type = 'sqlite';
  readonly capabilities = declareCapabilities({ rangeReads: true, multipart: true });
  readonly location: string;
  readonly spatialite: boolean;
  readonly srid: number;
  private readonly writer: Database.Database;
  private readonly reader: Database.Database;
  /** The tail of the chain of writes on the writer connection. */
  private writeTail: Promise<unknown> = Promise.resolve();

  constructor(config: SqliteBackendConfig) {
    this.location = resolve(config.database_path);
    this.spatialite = config.spatialite_enabled;
    this.srid = config.srid;
    try {
      mkdirSync(dirname(this.location), { recursive: true });
    } catch (cause) {
      throw this.openFailure(`cannot create the folder ${dirname(this.location)}`, cause);
    }
    this.writer = this.connect(config);
    try {
      this.createSchema();
      this.reader = this.connect(config);
    } catch (error) {
      this.writer.close();
      throw error;
    }
  }

  uri(key: string): string {
    return `sqlite://${this.location}#${key}`;
  }

  // ------------------------------------------------------------------ objects

  put(key: string, body: Body, options: PutOptions = {}): Promise<ObjectStat> {
    return this.exclusive(async () => {
      const db = this.writer;
      try {
        db.exec('BEGIN IMMEDIATE');
        db.prepare('DELETE FROM earthmem_object_chunks WHERE key = ?').run(key);
        const insertChunk = db.prepare('INSERT INTO earthmem_object_chunks (key, seq, data) VALUES (?, ?, ?)');
        let size = 0;
        let seq = 0;
        for await (const part of partsOf(body, CHUNK_BYTES)) {
          if (part.byteLength === 0) continue;
          insertChunk.run(key, seq++, Buffer.from(part.buffer, part.byteOffset, part.byteLength));
          size += part.byteLength;
        }
        const modified = new Date();
        db.prepare(
          `INSERT INTO earthmem_objects (key, size, chunk_bytes, modified_ms, content_type) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (key) DO UPDATE SET size = excluded.size, chunk_bytes = excluded.chunk_bytes,
             modified_ms = excluded.modified_ms, content_type = excluded.content_type`,
        ).run(key, size, CHUNK_BYTES, modified.getTime(), options.contentType ?? null);
        db.exec('COMMIT');
        return { key, size, modified };
      } catch (cause) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw this.fail('put', cause, key);
      }
    });
  }

  async get(key: string): Promise<Uint8Array> {
    try {
      return this.reader.transaction(() => {
        const object = this.objectRow(key);
        const out = new Uint8Array(object.size);
        let at = 0;
        for (const chunk of this.reader
          .prepare('SELECT data FROM earthmem_object_chunks WHERE key = ? ORDER BY seq')
          .iterate(key) as IterableIterator<{ data: Buffer }>) {
          out.set(chunk.data, at);
          at += chunk.data.byteLength;
        }
        if (at !== object.size) throw new StorageError(`sqlite get: object ${key} has ${at} bytes in chunks, ${object.size} expected`);
        return out;
      })();
    } catch (cause) {
      throw this.fail('get', cause, key);
    }
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    try {
      return this.reader.transaction(() => {
        const object = this.objectRow(key);
        const end = Math.min(offset + length, object.size);
        if (offset >= end) return new Uint8Array(0);
        const out = new Uint8Array(end - offset);
        const first = Math.floor(offset / object.chunk_bytes);
        const last = Math.floor((end - 1) / object.chunk_bytes);
        const chunks = this.reader
          .prepare('SELECT seq, data FROM earthmem_object_chunks WHERE key = ? AND seq BETWEEN ? AND ? ORDER BY seq')
          .iterate(key, first, last) as IterableIterator<{ seq: number; data: Buffer }>;
        for (const { seq, data } of chunks) {
          const chunkStart = seq * object.chunk_bytes;
          const from = Math.max(offset, chunkStart);
          const to = Math.min(end, chunkStart + data.byteLength);
          out.set(data.subarray(from - chunkStart, to - chunkStart), from - offset);
        }
        return out;
      })();
    } catch (cause) {
      throw this.fail('getRange', cause, key);
    }
  }

  async stat(key: string): Promise<ObjectStat> {
    try {
      const object = this.objectRow(key);
      return { key, size: object.size, modified: new Date(object.modified_ms) };
    } catch (cause) {
      throw this.fail('stat', cause, key);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectStat> {
    const page = this.reader.prepare(
      `SELECT key, size, modified_ms FROM earthmem_objects WHERE key GLOB ? AND key > ? ORDER BY key LIMIT ${LIST_PAGE}`,
    );
    for (let after = ''; ; ) {
      let rows: ObjectRow[];
      try {
        rows = page.all(globPrefix(prefix), after) as ObjectRow[];
      } catch (cause) {
        throw this.fail('list', cause, prefix);
      }
      for (const row of rows) yield { key: row.key, size: row.size, modified: new Date(row.modified_ms) };
      if (rows.length < LIST_PAGE) return;
      after = rows[rows.length - 1]!.key;
    }
  }

  delete(key: string): Promise<void> {
    return this.exclusive(() => {
      try {
        this.writer
          .transaction(() => {
            this.writer.prepare('DELETE FROM earthmem_object_chunks WHERE key = ?').run(key);
            this.writer.prepare('DELETE FROM earthmem_objects WHERE key = ?').run(key);
          })
          .immediate();
      } catch (cause) {
        throw this.fail('delete', cause, key);
      }
    });
  }

  // ------------------------------------------------------------------ records

  writeRecords(key: string, set: RecordSet): Promise<RecordWriteResult> {
    return this.exclusive(() => {
      const db = this.writer;
      const geometry = this.geometryExpressions();
      try {
        const insertPoint = db.prepare(
          `INSERT INTO ${POINTS} (object_key, ${pointColumns}${geometry ? ', geom' : ''})
           VALUES (@objectKey, @source, @partition, @offset, @size, @memoryType, @dataset, @id, @variable, @timeUs, @key,
             @lon, @lat, @value, @unit, @quality, @station, @elevation, @attrs${geometry ? `, ${geometry.point}` : ''})`,
        );
        const insertFeature = db.prepare(
          `INSERT INTO ${FEATURES} (object_key, ${featureColumns}${geometry ? ', geom' : ''})
           VALUES (@objectKey, @source, @partition, @offset, @size, @memoryType, @dataset, @id, @variable, @timeUs, @key,
             @geometryJson, @properties, @value, @minLon, @minLat, @maxLon, @maxLat${geometry ? `, ${geometry.feature}` : ''})`,
        );
        let points = 0;
        let bytes = 0;
        db.transaction(() => {
          this.deleteRecordRows(key);
          for (const record of set.records) {
            const common = {
              objectKey: key,
              source: record.position.source,
              partition: record.position.partition,
              offset: record.position.offset,
              size: record.size,
              memoryType: set.memoryType,
              dataset: record.dataset,
              id: record.id ?? null,
              variable: record.variable ?? null,
              timeUs: record.timeUs,
              key: record.key ?? null,
            };
            bytes += record.size;
            if (record.kind === 'point') {
              points++;
              const { lon, lat, value, unit, quality, station, elevation, attrs } = record;
              insertPoint.run({ ...common, lon, lat, value, unit: unit ?? null, quality: quality ?? null, station: station ?? null, elevation: elevation ?? null, attrs: attrs ?? null });
            } else {
              const [minLon, minLat, maxLon, maxLat] = record.bbox;
              const { properties, value } = record;
              insertFeature.run({
                ...common, geometryJson: JSON.stringify(record.geometry), properties: properties ?? null, value: value ?? null, minLon, minLat, maxLon, maxLat,
              });
            }
          }
          db.prepare(
            `INSERT INTO earthmem_record_sets (key, memory_type, dataset, rows, bytes, written_ms) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (key) DO UPDATE SET memory_type = excluded.memory_type, dataset = excluded.dataset,
               rows = excluded.rows, bytes = excluded.bytes, written_ms = excluded.written_ms`,
          ).run(key, set.memoryType, set.dataset, set.records.length, bytes, Date.now());
        }).immediate();
        const features = set.records.length - points;
        const container = [points > 0 || features === 0 ? POINTS : undefined, features > 0 ? FEATURES : undefined].filter(Boolean).join(', ');
        return { rows: set.records.length, bytes, container };
      } catch (cause) {
        throw this.fail('writeRecords', cause, key);
      }
    });
  }

  async readRecords(key: string): Promise<ObservationRecord[]> {
    try {
      return this.reader.transaction(() => {
        const known = this.reader.prepare('SELECT 1 FROM earthmem_record_sets WHERE key = ?').get(key);
        if (!known) throw new NotFoundError(key, { context: { connector, operation: 'readRecords' } });
        const points = this.reader.prepare(`SELECT ${pointColumns} FROM ${POINTS} WHERE object_key = ? ${byPosition}`).all(key) as PointRow[];
        const features = this.reader.prepare(`SELECT ${featureColumns} FROM ${FEATURES} WHERE object_key = ? ${byPosition}`).all(key) as FeatureRow[];
        return mergeByPosition(points.map(pointOf), features.map(featureOf));
      })();
    } catch (cause) {
      throw this.fail('readRecords', cause, key);
    }
  }

  async *listKeys(prefix: string): AsyncIterable<string> {
    const page = this.reader.prepare(`SELECT key FROM earthmem_record_sets WHERE key GLOB ? AND key > ? ORDER BY key LIMIT ${LIST_PAGE}`);
    for (let after = ''; ; ) {
      let keys: string[];
      try {
        keys = page.pluck().all(globPrefix(prefix), after) as string[];
      } catch (cause) {
        throw this.fail('listKeys', cause, prefix);
      }
      yield* keys;
      if (keys.length < LIST_PAGE) return;
      after = keys[keys.length - 1]!;
    }
  }

  deleteRecords(key: string): Promise<void> {
    return this.exclusive(() => {
      try {
        this.writer.transaction(() => this.deleteRecordRows(key)).immediate();
      } catch (cause) {
        throw this.fail('deleteRecords', cause, key);
      }
    });
  }

  /**
   * Records whose geometry intersects `query.bbox` (WGS84), in key then source order. With
   * SpatiaLite the R*Tree spatial index (`SpatialIndex` virtual table) selects candidates and
   * `ST_Intersects` decides exactly; without it, points by lon/lat and features by their bbox.
   */
  async findRecords(query: RecordQuery): Promise<FoundRecord[]> {
    const [minLon, minLat, maxLon, maxLat] = query.bbox;
    const params = { minLon, minLat, maxLon, maxLat, fromUs: query.fromUs ?? Number.MIN_SAFE_INTEGER, toUs: query.toUs ?? Number.MAX_SAFE_INTEGER };
    const time = 'time_us BETWEEN @fromUs AND @toUs';
    const order = `ORDER BY object_key, ${byPosition.slice('ORDER BY '.length)}`;
    let pointWhere: string;
    let featureWhere: string;
    if (this.spatialite) {
      const frame = this.toStorageSrid(`BuildMbr(@minLon, @minLat, @maxLon, @maxLat, ${WGS84})`);
      const indexed = (table: string) =>
        `rowid IN (SELECT rowid FROM SpatialIndex WHERE f_table_name = '${table}' AND f_geometry_column = 'geom' AND search_frame = ${frame})
         AND ST_Intersects(geom, ${frame}) = 1`;
      pointWhere = indexed(POINTS);
      featureWhere = indexed(FEATURES);
    } else {
      pointWhere = 'lon BETWEEN @minLon AND @maxLon AND lat BETWEEN @minLat AND @maxLat';
      featureWhere = 'bbox_min_lon <= @maxLon AND bbox_max_lon >= @minLon AND bbox_min_lat <= @maxLat AND bbox_max_lat >= @minLat';
    }
    try {
      return this.reader.transaction(() => {
        const points = this.reader
          .prepare(`SELECT object_key, ${pointColumns} FROM ${POINTS} WHERE ${pointWhere} AND ${time} ${order}`)
          .all(params) as PointRow[];
        const features = this.reader
          .prepare(`SELECT object_key, ${featureColumns} FROM ${FEATURES} WHERE ${featureWhere} AND ${time} ${order}`)
          .all(params) as FeatureRow[];
        return [
          ...points.map((row) => ({ objectKey: row.object_key!, record: pointOf(row) as ObservationRecord })),
          ...features.map((row) => ({ objectKey: row.object_key!, record: featureOf(row) as ObservationRecord })),
        ];
      })();
    } catch (cause) {
      throw this.fail('findRecords', cause);
    }
  }

  async close(): Promise<void> {
    await this.writeTail;
    if (this.reader.open) this.reader.close();
    if (this.writer.open) this.writer.close();
  }

  // ------------------------------------------------------------------ internals

  /** Runs `work` after every earlier write on the writer connection has finished. */
  private exclusive<T>(work: () => T | Promise<T>): Promise<T> {
    const result = this.writeTail.then(work);
    this.writeTail = result.catch(() => undefined);
    return result;
  }

  private objectRow(key: string): ObjectRow {
    const row = this.reader.prepare('SELECT key, size, chunk_bytes, modified_ms FROM earthmem_objects WHERE key = ?').get(key) as
      | ObjectRow
      | undefined;
    if (!row) throw new NotFoundError(key, { context: { connector } });
    return row;
  }

  private deleteRecordRows(key: string): void {
    this.writer.prepare(`DELETE FROM ${POINTS} WHERE object_key = ?`).run(key);
    this.writer.prepare(`DELETE FROM ${FEATURES} WHERE object_key = ?`).run(key);
    this.writer.prepare('DELETE FROM earthmem_record_sets WHERE key = ?').run(key);
  }

  /** SQL for the geometry column values, or undefined without SpatiaLite. */
  private geometryExpressions(): { point: string; feature: string } | undefined {
    if (!this.spatialite) return undefined;
    return {
      point: this.toStorageSrid(`MakePoint(@lon, @lat, ${WGS84})`),
      // Z and M are dropped from the indexed geometry (XY columns); the exact GeoJSON keeps them.
      feature: this.toStorageSrid(`SetSRID(CastToXY(GeomFromGeoJSON(@geometryJson)), ${WGS84})`),
    };
  }

  private toStorageSrid(wgs84Sql: string): string {
    return this.srid === WGS84 ? wgs84Sql : `Transform(${wgs84Sql}, ${this.srid})`;
  }

  private connect(config: SqliteBackendConfig): Database.Database {
    let db: Database.Database;
    try {
      db = new Database(this.location, { timeout: Math.round(config.busy_timeout) });
      db.pragma(`journal_mode = ${config.journal_mode.toUpperCase()}`);
      // FULL: a commit is on disk when put/writeRecords resolves, in WAL mode too.
      db.pragma('synchronous = FULL');
    } catch (cause) {
      throw this.openFailure('cannot open the database', cause);
    }
    if (config.spatialite_enabled) {
      const module = config.spatialite_module ?? process.env.SPATIALITE_MODULE ?? 'mod_spatialite';
      try {
        db.loadExtension(module);
      } catch (cause) {
        db.close();
        throw new ConfigError(
          `sqlite: spatialite_enabled is true but the SpatiaLite module "${module}" cannot be loaded; ` +
            'install it (Debian/Ubuntu: apt-get install libsqlite3-mod-spatialite, or scripts/services up spatialite) ' +
            'or set spatialite_module to the path of mod_spatialite',
          [],
          { cause, context: { connector, path: this.location } },
        );
      }
    }
    return db;
  }

  /** Tables, and with SpatiaLite its metadata, geometry columns and spatial indexes; idempotent. */
  private createSchema(): void {
    const db = this.writer;
    try {
      db.transaction(() => {
        db.exec(baseSchema);
        const hasMetadata = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'geometry_columns'").get() !== undefined;
        const geometryTables = hasMetadata
          ? (db.prepare('SELECT f_table_name AS name, srid FROM geometry_columns WHERE f_table_name IN (?, ?)').all(POINTS, FEATURES) as {
              name: string;
              srid: number;
            }[])
          : [];
        if (!this.spatialite) {
          if (geometryTables.length > 0) {
            throw new ConfigError(`sqlite: ${this.location} has SpatiaLite geometry columns; set spatialite_enabled: true to write to it`, [], {
              context: { connector, path: this.location },
            });
          }
          return;
        }
        if (!hasMetadata) db.prepare("SELECT InitSpatialMetadata(0, 'NONE')").get();
        for (const srid of new Set([WGS84, this.srid])) {
          // SRIDs are inlined: better-sqlite3 binds numbers as REAL and SpatiaLite wants INTEGER arguments.
          const known = db.prepare(`SELECT 1 FROM spatial_ref_sys WHERE srid = ${srid}`).get() !== undefined;
          if (!known && db.prepare(`SELECT InsertEpsgSrid(${srid})`).pluck().get() !== 1) {
            throw new ConfigError(`sqlite: srid ${srid} is not an EPSG code SpatiaLite knows`, [], { context: { connector, path: this.location } });
          }
        }
        for (const [table, type, backfill] of [
          [POINTS, 'POINT', `MakePoint(lon, lat, ${WGS84})`],
          [FEATURES, 'GEOMETRY', `SetSRID(CastToXY(GeomFromGeoJSON(geometry_json)), ${WGS84})`],
        ] as const) {
          const existing = geometryTables.find((g) => g.name === table);
          if (existing) {
            if (existing.srid !== this.srid) {
              throw new ConfigError(`sqlite: ${table}.geom in ${this.location} has srid ${existing.srid}, the configuration says ${this.srid}`, [], {
                context: { connector, path: this.location },
              });
            }
            continue;
          }
          if (db.prepare(`SELECT AddGeometryColumn(?, 'geom', ${this.srid}, ?, 'XY')`).pluck().get(table, type) !== 1) {
            throw new StorageError(`sqlite: AddGeometryColumn(${table}.geom) failed`, { context: { connector, path: this.location } });
          }
          if (db.prepare(`SELECT CreateSpatialIndex(?, 'geom')`).pluck().get(table) !== 1) {
            throw new StorageError(`sqlite: CreateSpatialIndex(${table}.geom) failed`, { context: { connector, path: this.location } });
          }
          // Rows written before SpatiaLite was enabled get their geometry now.
          db.exec(`UPDATE ${table} SET geom = ${this.toStorageSrid(backfill)} WHERE geom IS NULL`);
        }
      }).immediate();
    } catch (cause) {
      if (cause instanceof ConfigError) throw cause;
      throw this.fail('open', cause);
    }
  }

  private openFailure(what: string, cause: unknown): StorageError {
    const code = (cause as { code?: string }).code;
    return new StorageError(`sqlite: ${what} ${this.location}${code ? ` (${code})` : ''}`, {
      cause,
      retriable: isRetriableSqliteCode(code),
      context: { connector, operation: 'open', path: this.location },
    });
  }

  /** SQLite result codes to typed errors: BUSY/LOCKED/IOERR retriable, READONLY/PERM/AUTH access denied. */
  private fail(operation: string, cause: unknown, key?: string): StorageError {
    if (cause instanceof StorageError) return cause;
    const code = (cause as { code?: unknown }).code;
    const sqliteCode = typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
    const keyed = key === undefined ? {} : { key };
    if (sqliteCode && !/^SQLITE_(READONLY|PERM|AUTH)/.test(sqliteCode)) {
      return new StorageError(`sqlite ${operation} failed (${sqliteCode})`, {
        cause,
        retriable: isRetriableSqliteCode(sqliteCode),
        context: { connector, operation, path: this.location, ...keyed },
      });
    }
    return storageFailure(cause, { connector, operation, ...keyed, accessDenied: sqliteCode !== undefined, context: { path: this.location } });
  }
}

function isRetriableSqliteCode(code: string | undefined): boolean {
  return typeof code === 'string' && /^SQLITE_(BUSY|LOCKED|IOERR)/.test(code);
}

/** A GLOB pattern matching keys that start with `prefix` (GLOB is case-sensitive and can use the key index). */
function globPrefix(prefix: string): string {
  return `${prefix.replace(/[*?[]/g, (c) => `[${c}]`)}*`;
}

function positionOf(row: RecordRow) {
  return { source: row.source, partition: row.source_partition, offset: row.source_offset };
}

function pointOf(row: PointRow): PointRecord {
  return {
    kind: 'point',
    position: positionOf(row),
    size: row.size,
    id: row.record_id,
    dataset: row.dataset,
    variable: row.variable!,
    timeUs: row.time_us,
    lon: row.lon,
    lat: row.lat,
    value: row.value,
    unit: row.unit,
    quality: row.quality,
    station: row.station,
    elevation: row.elevation,
    attrs: row.attrs,
    key: row.record_key,
  };
}

function featureOf(row: FeatureRow): VectorRecord {
  return {
    kind: 'vector',
    position: positionOf(row),
    size: row.size,
    id: row.record_id,
    dataset: row.dataset,
    variable: row.variable,
    timeUs: row.time_us,
    geometry: JSON.parse(row.geometry_json) as GeoJsonGeometry,
    properties: row.properties,
    value: row.value,
    bbox: [row.bbox_min_lon, row.bbox_min_lat, row.bbox_max_lon, row.bbox_max_lat],
    key: row.record_key,
  };
}

function comparePosition(a: ObservationRecord, b: ObservationRecord): number {
  const x = a.position;
  const y = b.position;
  if (x.source !== y.source) return x.source < y.source ? -1 : 1;
  return x.partition - y.partition || x.offset - y.offset;
}

/** Points and features of one key, in source order. */
function mergeByPosition(points: PointRecord[], features: VectorRecord[]): ObservationRecord[] {
  if (features.length === 0) return points;
  if (points.length === 0) return features;
  return [...points, ...features].sort(comparePosition);
}
