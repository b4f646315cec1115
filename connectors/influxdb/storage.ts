import { ConfigError, NotFoundError, StorageError, type ErrorContext } from '../../src/core/errors.js';
import type { ObservationRecord, PointRecord } from '../../src/core/record.js';
import type { RecordSet, RecordStore, RecordWriteResult } from '../../src/core/record-store.js';
import { storageFailure } from '../../src/core/storage-errors.js';
import { influxdbConfigProblems, type InfluxdbBackendConfig } from './config.js';

const connector = 'influxdb';
/** Bytes per write request at most (the 1.x server's default max-body-size is 25 MB). */
const maxRequestBytes = 8 * 1024 * 1024;
/** Rows per chunk of a chunked /query answer. */
const queryChunkRows = 10_000;
/** The 2.x delete API needs a time range: the whole range InfluxDB can store. */
const allTime = { start: '1677-09-21T00:12:43.145224194Z', stop: '2262-04-11T23:47:16.854775806Z' };

/**
 * Record fields that are tags (indexed, for WHERE and GROUP BY). A value a tag cannot carry exactly
 * (empty, or with a backslash or line break: 1.x line protocol has no escape for those) goes in
 * the string field `<tag>_text` instead, so every record comes back as written.
 */
const recordTags = ['dataset', 'variable', 'station', 'quality', 'unit'] as const;
type RecordTag = (typeof recordTags)[number];

export type InfluxApi = 'v1' | 'v2';

/**
 * InfluxDBStorage: point records as points of measurement `<prefix><MemoryType>`, tags `dataset`,
 * `variable`, `station`, `quality`, `unit`, `object_key`; fields `value`, `lon`, `lat`,
 * `elevation`, `id`, `attrs`, `source`, `partition`, `offset`, `size`, `record_key`; time in
 * microseconds. Vector features are refused. InfluxDB has no transactions: replacing a key is a
 * DELETE then writes (see README for the window this leaves).
 */
export class InfluxDBStorage implements RecordStore {
  readonly type = 'influxdb';
  readonly location: string;
  private readonly base: string;
  private readonly database: string;
  private readonly retentionPolicy: string | undefined;
  private readonly config: InfluxdbBackendConfig;
  private api: Promise<InfluxApi> | undefined;
  /** Writers of one key in this process take turns, so a rewrite never interleaves with another. */
  private readonly keyLocks = new Map<string, Promise<unknown>>();

  constructor(config: InfluxdbBackendConfig) {
    const problems = influxdbConfigProblems(config);
    if (problems.length > 0) throw new ConfigError(`influxdb: ${problems.join('; ')}`);
    this.config = config;
    const url = new URL(config.url);
    url.username = '';
    url.password = '';
    this.base = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
    const slash = config.bucket.indexOf('/');
    this.database = slash < 0 ? config.bucket : config.bucket.slice(0, slash);
    this.retentionPolicy = slash < 0 ? undefined : config.bucket.slice(slash + 1);
    this.location = `${this.base}/${config.bucket}`;
    if (config.api !== 'auto') this.api = Promise.resolve(config.api);
  }

  uri(key: string): string {
    return `${this.location}/${this.config.measurement_prefix}*#${key}`;
  }

  /** The API in use: configured, or asked of the server's /ping once (`X-Influxdb-Version`). */
  apiInUse(): Promise<InfluxApi> {
    if (!this.api) {
      const asked = this.request('ping', undefined, 'GET', '/ping', {}).then((res) => {
        const version = res.headers.get('x-influxdb-version') ?? '';
        if (!/^v?([2-9]|\d{2,})\./.test(version)) return 'v1' as const;
        if (this.config.org === undefined || this.config.token === undefined) {
          throw new ConfigError(`influxdb: the server is InfluxDB ${version}, whose API needs token and org`);
        }
        return 'v2' as const;
      });
      this.api = asked;
      asked.catch(() => {
        if (this.api === asked) this.api = undefined;
      });
    }
    return this.api;
  }

  async writeRecords(key: string, set: RecordSet): Promise<RecordWriteResult> {
    const measurement = this.measurementOf(set.memoryType, key);
    const vectors = set.records.filter((r) => r.kind !== 'point').length;
    if (vectors > 0) {
      throw new StorageError(
        `influxdb writeRecords: ${vectors} of ${set.records.length} records are vector features; InfluxDB keeps points only (use postgis or mongodb for vectors)`,
        { context: { connector, operation: 'writeRecords', key } },
      );
    }
    const lines = toLines(key, measurement, set.records as readonly PointRecord[]);
    return this.withKeyLock(key, async () => {
      await this.deleteKey(key, 'writeRecords');
      let bytes = 0;
      for (const body of batches(lines, this.config.batch_points)) {
        await this.writeBatch(key, body);
        bytes += Buffer.byteLength(body);
      }
      const container = `${this.config.bucket}.${measurement}`;
      return { rows: lines.length, bytes, container };
    });
  }

  async readRecords(key: string): Promise<ObservationRecord[]> {
    const records: PointRecord[] = [];
    const statement = `SELECT * FROM ${this.measurementRegex()} WHERE "object_key" = ${stringLiteral(key)}`;
    for (const series of await this.query('readRecords', key, statement)) {
      for (const row of series.values) records.push(fromRow(series.columns, row));
    }
    if (records.length === 0) throw new NotFoundError(key, { context: { connector, operation: 'readRecords' } });
    return records.sort(bySourcePosition);
  }

  async *listKeys(prefix: string): AsyncIterable<string> {
    const statement = `SHOW TAG VALUES FROM ${this.measurementRegex()} WITH KEY = "object_key" WHERE "object_key" =~ /^${regexEscape(prefix)}/`;
    const keys = new Set<string>();
    for (const series of await this.query('listKeys', prefix, statement)) {
      const at = series.columns.indexOf('value');
      for (const row of series.values) keys.add(String(row[at]));
    }
    yield* [...keys].sort();
  }

  async deleteRecords(key: string): Promise<void> {
    await this.withKeyLock(key, () => this.deleteKey(key, 'deleteRecords'));
  }

  async close(): Promise<void> {
    this.keyLocks.clear();
  }

  // ------------------------------------------------------------------ HTTP

  private async deleteKey(key: string, operation: string): Promise<void> {
    if ((await this.apiInUse()) === 'v2') {
      const predicate = `object_key="${key.replace(/["\\]/g, '\\$&')}"`;
      await this.request(operation, key, 'POST', '/api/v2/delete', { org: this.config.org!, bucket: this.config.bucket }, JSON.stringify({ ...allTime, predicate }), {
        'content-type': 'application/json',
      });
      return;
    }
    // DELETE cannot name a retention policy: it removes the key's points from all of the database's.
    await this.query(operation, key, `DELETE FROM ${this.measurementRegex()} WHERE "object_key" = ${stringLiteral(key)}`, 'POST');
  }

  private async writeBatch(key: string, body: string): Promise<void> {
    const headers = { 'content-type': 'text/plain; charset=utf-8' };
    if ((await this.apiInUse()) === 'v2') {
      await this.request('writeRecords', key, 'POST', '/api/v2/write', { org: this.config.org!, bucket: this.config.bucket, precision: 'us' }, body, headers);
      return;
    }
    const params = { db: this.database, ...(this.retentionPolicy ? { rp: this.retentionPolicy } : {}), precision: 'u' };
    try {
      await this.request('writeRecords', key, 'POST', '/write', params, body, headers);
    } catch (error) {
      if (!(error instanceof StorageError && /database not found/.test(String((error.cause as Error | undefined)?.message)))) throw error;
      // 1.x: the first write into a new database creates it (needs an admin user).
      await this.query('writeRecords', key, `CREATE DATABASE ${identifier(this.database)}`, 'POST');
      await this.request('writeRecords', key, 'POST', '/write', params, body, headers);
    }
  }

  /**
   * An InfluxQL statement through /query (1.x, and 2.x's 1.x-compatible endpoint), chunked so a
   * server's max-row-limit does not cut the answer. A database that does not exist yet holds nothing.
   */
  private async query(operation: string, key: string, statement: string, method: 'GET' | 'POST' = 'GET'): Promise<Series[]> {
    const params = {
      db: this.database,
      ...(this.retentionPolicy ? { rp: this.retentionPolicy } : {}),
      q: statement,
      epoch: 'u',
      chunked: 'true',
      chunk_size: String(queryChunkRows),
    };
    const res = await this.request(operation, key, method, '/query', params);
    const series: Series[] = [];
    for (const line of (await res.text()).split('\n')) {
      if (line.trim() === '') continue;
      const answer = JSON.parse(line) as QueryAnswer;
      const problem = answer.error ?? answer.results?.find((r) => r.error)?.error;
      if (problem !== undefined) {
        if (/^database not found/.test(problem)) return [];
        throw this.failure(new InfluxError(problem, res.status), operation, key);
      }
      for (const result of answer.results ?? []) series.push(...(result.series ?? []));
    }
    return series;
  }

  private async request(
    operation: string,
    key: string | undefined,
    method: 'GET' | 'POST',
    path: string,
    params: Record<string, string>,
    body?: string,
    headers: Record<string, string> = {},
  ): Promise<Response> {
    const api = path === '/ping' ? undefined : await this.apiInUse();
    let res: Response;
    try {
      const query = new URLSearchParams(params).toString();
      res = await fetch(`${this.base}${path}${query ? `?${query}` : ''}`, {
        method,
        headers: { ...headers, ...(api ? this.authorization(api) : {}) },
        ...(body === undefined ? {} : { body }),
        signal: AbortSignal.timeout(this.config.request_timeout),
      });
    } catch (cause) {
      if ((cause as Error)?.name === 'TimeoutError') {
        throw new StorageError(`influxdb ${operation} timed out after ${this.config.request_timeout} ms`, { cause, retriable: true, context: this.context(operation, key) });
      }
      throw this.failure(cause, operation, key);
    }
    if (!res.ok) {
      const text = await res.text().catch(() => '');
      let message = text.slice(0, 500);
      try {
        message = (JSON.parse(text) as { error?: string; message?: string }).error ?? (JSON.parse(text) as { message?: string }).message ?? message;
      } catch {
        // not JSON: keep the text
      }
      throw this.failure(new InfluxError(message || res.statusText, res.status), operation, key);
    }
    return res;
  }

  private authorization(api: InfluxApi): Record<string, string> {
    const { token, username, password } = this.config;
    if (api === 'v2') return token ? { authorization: `Token ${token}` } : {};
    // 1.x before 1.8 knows only basic auth (and u/p in the query string, which would land in logs).
    const [user, pass] = token !== undefined ? splitToken(token) : [username, password];
    return user === undefined ? {} : { authorization: `Basic ${Buffer.from(`${user}:${pass ?? ''}`).toString('base64')}` };
  }

  private failure(cause: unknown, operation: string, key: string | undefined): StorageError {
    // A 404 here is a wrong URL or a missing bucket, never a missing key.
    return storageFailure(cause, { connector, operation, key, notFound: false });
  }

  private context(operation: string, key: string | undefined): ErrorContext {
    return { connector, operation, ...(key === undefined ? {} : { key }) };
  }

  private measurementOf(memoryType: string, key: string): string {
    const name = `${this.config.measurement_prefix}${memoryType}`;
    if (!/^[A-Za-z0-9_.-]+$/.test(memoryType)) {
      throw new StorageError(`influxdb writeRecords: memory type ${JSON.stringify(memoryType)} cannot name a measurement (letters, digits, _ . - only)`, {
        context: { connector, operation: 'writeRecords', key },
      });
    }
    return name;
  }

  private measurementRegex(): string {
    return `/^${regexEscape(this.config.measurement_prefix)}/`;
  }

  private async withKeyLock<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.keyLocks.get(key) ?? Promise.resolve();
    const mine = previous.catch(() => undefined).then(work);
    const settled = mine.catch(() => undefined);
    this.keyLocks.set(key, settled);
    try {
      return await mine;
    } finally {
      if (this.keyLocks.get(key) === settled) this.keyLocks.delete(key);
    }
  }
}

interface Series {
  name: string;
  columns: string[];
  values: unknown[][];
}

interface QueryAnswer {
  error?: string;
  results?: { statement_id: number; error?: string; series?: Series[] }[];
}

/** A refusal from the server, with its HTTP status for `storageFailure`. */
class InfluxError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(`HTTP ${status}: ${message}`);
    this.name = 'InfluxError';
  }
}

function splitToken(token: string): [string, string] {
  const colon = token.indexOf(':');
  return colon < 0 ? [token, ''] : [token.slice(0, colon), token.slice(colon + 1)];
}

// ------------------------------------------------------------------ line protocol

/** Measurement names: comma and space are escaped. */
export function escapeMeasurement(name: string): string {
  return name.replace(/[, ]/g, '\\$&');
}

/** Tag keys and values: comma, equals sign and space are escaped (backslash is not an escape there in 1.x). */
export function escapeTag(value: string): string {
  return value.replace(/[,= ]/g, '\\$&');
}

/** String field values: double quote and backslash are escaped; line breaks may stand as they are. */
export function quoteField(value: string): string {
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}

/** Whether a tag can carry `value` exactly. */
export function tagSafe(value: string): boolean {
  return value.length > 0 && !/[\\\n\r]/.test(value);
}

function float(value: number): string {
  return Object.is(value, -0) ? '-0' : String(value);
}

/**
 * One line per record. Points of one series (measurement + tags) at the same microsecond would
 * overwrite each other, so the second and later get a tag `dup=<n>`.
 */
export function toLines(objectKey: string, measurement: string, records: readonly PointRecord[]): string[] {
  if (!tagSafe(objectKey)) {
    throw new StorageError(`influxdb writeRecords: the key ${JSON.stringify(objectKey)} cannot be a tag value (empty, backslash or line break)`, {
      context: { connector, operation: 'writeRecords', key: objectKey },
    });
  }
  const seen = new Map<string, number>();
  return records.map((r) => {
    const tags: [string, string][] = [['object_key', objectKey]];
    const fields: string[] = [`value=${float(r.value)}`, `lon=${float(r.lon)}`, `lat=${float(r.lat)}`];
    for (const name of recordTags) {
      const value = r[name];
      if (value === null) continue;
      if (tagSafe(value)) tags.push([name, value]);
      else fields.push(`${name}_text=${quoteField(value)}`);
    }
    tags.sort(([a], [b]) => (a < b ? -1 : 1));
    let series = `${escapeMeasurement(measurement)}${tags.map(([k, v]) => `,${k}=${escapeTag(v)}`).join('')}`;
    const identity = `${series} ${r.timeUs}`;
    const dup = seen.get(identity) ?? 0;
    seen.set(identity, dup + 1);
    if (dup > 0) series += `,dup=${dup}`;
    if (r.elevation !== null) fields.push(`elevation=${float(r.elevation)}`);
    if (r.id !== null) fields.push(`id=${quoteField(r.id)}`);
    if (r.attrs !== null) fields.push(`attrs=${quoteField(r.attrs)}`);
    if (typeof r.key === 'string') fields.push(`record_key=${quoteField(r.key)}`);
    fields.push(`source=${quoteField(r.position.source)}`, `partition=${r.position.partition}i`, `offset=${r.position.offset}i`, `size=${r.size}i`);
    return `${series} ${fields.join(',')} ${r.timeUs}`;
  });
}

/** Request bodies of at most `points` lines and about `maxRequestBytes` bytes. */
function* batches(lines: readonly string[], points: number): Generator<string> {
  let batch: string[] = [];
  let bytes = 0;
  for (const line of lines) {
    if (batch.length > 0 && (batch.length >= points || bytes + line.length > maxRequestBytes)) {
      yield batch.join('\n');
      batch = [];
      bytes = 0;
    }
    batch.push(line);
    bytes += line.length + 1;
  }
  if (batch.length > 0) yield batch.join('\n');
}

function fromRow(columns: string[], row: unknown[]): PointRecord {
  const at = (name: string): unknown => {
    const i = columns.indexOf(name);
    return i < 0 ? null : row[i];
  };
  const text = (name: RecordTag): string | null => (at(name) as string | null) ?? (at(`${name}_text`) as string | null);
  const recordKey = at('record_key') as string | null;
  const record: PointRecord = {
    kind: 'point',
    position: { source: at('source') as string, partition: at('partition') as number, offset: at('offset') as number },
    size: at('size') as number,
    id: at('id') as string | null,
    dataset: text('dataset') ?? '',
    variable: text('variable') ?? '',
    timeUs: at('time') as number,
    lon: at('lon') as number,
    lat: at('lat') as number,
    value: at('value') as number,
    unit: text('unit'),
    quality: text('quality'),
    station: text('station'),
    elevation: at('elevation') as number | null,
    attrs: at('attrs') as string | null,
    ...(recordKey === null ? {} : { key: recordKey }),
  };
  return record;
}

function bySourcePosition(a: ObservationRecord, b: ObservationRecord): number {
  const x = a.position;
  const y = b.position;
  if (x.source !== y.source) return x.source < y.source ? -1 : 1;
  return x.partition - y.partition || x.offset - y.offset;
}

// ------------------------------------------------------------------ InfluxQL

/** A single-quoted InfluxQL string literal. */
export function stringLiteral(value: string): string {
  return `'${value.replace(/['\\]/g, '\\$&')}'`;
}

/** A double-quoted InfluxQL identifier. */
function identifier(name: string): string {
  return `"${name.replace(/["\\]/g, '\\$&')}"`;
}

/** Text for inside an InfluxQL `/regex/` that matches `text` literally (Go RE2 syntax). */
export function regexEscape(text: string): string {
  return text.replace(/[\\.+*?()|[\]{}^$/]/g, '\\$&');
}
