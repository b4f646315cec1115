import {
  Binary,
  BSON,
  Long,
  MongoClient,
  MongoError,
  MongoNetworkError,
  MongoServerSelectionError,
  ObjectId,
  type Collection,
  type Db,
  type MongoClientOptions,
} from 'mongodb';
import { declareCapabilities, type Backend, type Body, type ObjectStat, type PutOptions } from '../../src/core/backend.js';
import { partsOf } from '../../src/core/body.js';
import { ConfigError, NotFoundError, StorageError, type ErrorContext } from '../../src/core/errors.js';
import type { GeoJsonGeometry, ObservationRecord } from '../../src/core/record.js';
import type { RecordSet, RecordStore, RecordWriteResult } from '../../src/core/record-store.js';
import { storageFailure } from '../../src/core/storage-errors.js';
import type { MongodbBackendConfig } from './config.js';

const connector = 'mongodb';
/** Documents are capped at 16 MiB, so objects are split into chunks (GridFS uses 255 KiB; fewer round trips here). */
const chunkSize = 1024 * 1024;
/** Reads that found their version replaced mid-read start over this often before giving up (retriable). */
const readAttempts = 5;

/** Server error codes after which the same request may succeed (elections, shutdown, timeouts). */
const retriableServerCodes = new Set([6, 7, 63, 89, 91, 134, 150, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436]);
/** AuthenticationFailed, Unauthorized. */
const accessDeniedCodes = new Set([18, 13]);
const duplicateKey = 11000;

/** The current version of an object: its chunks are `<v>/<n>`, n = 0 … ceil(size / chunkSize) - 1. */
interface ObjectDoc {
  _id: string;
  v: string;
  size: number;
  chunkSize: number;
  contentType?: string;
  modified: Date;
}

/**
 * Chunks are addressed by `_id` only: FerretDB 1.x (SQLite) uses no secondary index, and a filter
 * on anything but one `_id` reads every document of the collection, megabytes each here.
 */
interface ChunkDoc {
  _id: string;
  key: string;
  v: string;
  n: number;
  data: Binary;
}

/** The current write of a record key: its rows carry `w` and live in `collection`. */
interface RecordKeyDoc {
  _id: string;
  w: string;
  collection: string;
  rows: number;
  modified: Date;
}

interface RecordDoc {
  object_key: string;
  w: string;
  kind: ObservationRecord['kind'];
  source: string;
  partition: number;
  offset: number;
  size: number;
  id: string | null;
  dataset: string;
  variable: string | null;
  time_us: Long | number;
  observed_at: Date;
  /** GeoJSON; on servers without nested arrays (FerretDB 1.x) only for points, others in `geometry_json`. */
  geometry?: GeoJsonGeometry;
  geometry_json?: string;
  value: number | null;
  key?: string | null;
  // points
  unit?: string | null;
  quality?: string | null;
  station?: string | null;
  elevation?: number | null;
  attrs?: string | null;
  // vectors
  properties?: string | null;
  bbox?: [number, number, number, number];
}

/**
 * MongoDBStorage: a `Backend` for encoded objects and a `RecordStore` for records, on MongoDB or
 * a server speaking its wire protocol (FerretDB). No multi-document transactions are used (FerretDB
 * 1.x has none): a new object body or a new set of rows is written under a fresh version id, the
 * key's pointer document is switched to it in one single-document write, then the previous
 * version is deleted. Readers follow the pointer, so they see the old or the new whole, never a mix.
 */
export class MongoDBStorage implements Backend, RecordStore {
  readonly type = 'mongodb';
  readonly capabilities = declareCapabilities({ rangeReads: true, multipart: true });
  /** The driver's client (for tools and tests, e.g. command monitoring). */
  readonly client: MongoClient;
  readonly database: string;
  readonly location: string;
  private readonly db: Db;
  private readonly prefix: string;
  private readonly files: Collection<ObjectDoc>;
  private readonly chunks: Collection<ChunkDoc>;
  private readonly recordKeys: Collection<RecordKeyDoc>;
  private readonly spatialIndex: boolean;
  /** Index creation, once per collection and process. */
  private readonly indexed = new Map<string, Promise<void>>();
  private connecting: Promise<unknown> | undefined;
  private nestedArrays: Promise<boolean> | undefined;
  private closed = false;

  constructor(
    config: Pick<
      MongodbBackendConfig,
      'connection_string' | 'database' | 'collection_prefix' | 'write_concern' | 'read_concern' | 'max_pool_size' | 'spatial_index'
    >,
    /** Extra driver options for tools and tests (e.g. `monitorCommands`); the config wins where both set one. */
    driverOptions: MongoClientOptions = {},
  ) {
    const { hosts, database } = parseConnectionString(config.connection_string);
    this.database = config.database ?? database ?? 'earth_memory';
    this.prefix = config.collection_prefix;
    this.location = `${hosts}/${this.database}/${this.prefix}*`;
    this.spatialIndex = config.spatial_index;
    const { w, j, wtimeout } = config.write_concern;
    try {
      this.client = new MongoClient(config.connection_string, {
        ...driverOptions,
        appName: 'earth-memory',
        maxPoolSize: config.max_pool_size,
        writeConcern: { w: w as number | 'majority', ...(j === undefined ? {} : { journal: j }), ...(wtimeout === undefined ? {} : { wtimeoutMS: wtimeout }) },
        readConcern: { level: config.read_concern },
      });
    } catch (cause) {
      // The parser's message is kept out: it may quote parts of the string, credentials included.
      throw new ConfigError(`mongodb: connection_string is not a valid MongoDB connection string (${(cause as Error).name})`);
    }
    this.db = this.client.db(this.database);
    this.files = this.db.collection<ObjectDoc>(`${this.prefix}objects.files`);
    this.chunks = this.db.collection<ChunkDoc>(`${this.prefix}objects.chunks`);
    this.recordKeys = this.db.collection<RecordKeyDoc>(`${this.prefix}records.keys`);
  }

  uri(key: string): string {
    return `${this.location}#${key}`;
  }

  // ------------------------------------------------------------------ objects (Backend)

  async put(key: string, body: Body, options: PutOptions = {}): Promise<ObjectStat> {
    const v = new ObjectId().toHexString();
    let size = 0;
    try {
      await this.ready();
      for await (const part of partsOf(body, chunkSize)) {
        if (part.byteLength === 0) continue;
        const n = size / chunkSize;
        await this.chunks.insertOne({ _id: chunkId(v, n), key, v, n, data: new Binary(part) });
        size += part.byteLength;
      }
      const modified = new Date();
      const doc: ObjectDoc = { _id: key, v, size, chunkSize, modified, ...(options.contentType ? { contentType: options.contentType } : {}) };
      const previous = await swap(this.files, doc);
      if (previous) await this.deleteChunks(previous.v, previous.size, previous.chunkSize);
      return { key, size, modified };
    } catch (cause) {
      await this.deleteChunks(v, size, chunkSize).catch(() => undefined);
      throw mongoFailure(cause, 'put', key);
    }
  }

  async get(key: string): Promise<Uint8Array> {
    return this.read('get', key, 0, Number.MAX_SAFE_INTEGER);
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    return this.read('getRange', key, offset, length);
  }

  async stat(key: string): Promise<ObjectStat> {
    try {
      await this.ready();
      const doc = await this.files.findOne({ _id: key });
      if (!doc) throw new NotFoundError(key, { context: { connector, operation: 'stat' } });
      return { key, size: doc.size, modified: doc.modified };
    } catch (cause) {
      throw mongoFailure(cause, 'stat', key);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectStat> {
    try {
      await this.ready();
      const cursor = this.files
        .find({ _id: { $regex: `^${escapeRegex(prefix)}` } }, { projection: { size: 1, modified: 1 } })
        .sort({ _id: 1 });
      for await (const doc of cursor) yield { key: doc._id, size: doc.size, modified: doc.modified };
    } catch (cause) {
      throw mongoFailure(cause, 'list', prefix);
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.ready();
      const previous = await this.files.findOneAndDelete({ _id: key });
      if (previous) await this.deleteChunks(previous.v, previous.size, previous.chunkSize);
    } catch (cause) {
      throw mongoFailure(cause, 'delete', key);
    }
  }

  /** Bytes [offset, offset+length) of the object's current version, following it if it is replaced mid-read. */
  private async read(operation: string, key: string, offset: number, length: number): Promise<Uint8Array> {
    try {
      await this.ready();
      let doc = await this.files.findOne({ _id: key });
      for (let attempt = 1; ; attempt++) {
        if (!doc) throw new NotFoundError(key, { context: { connector, operation } });
        const end = Math.min(doc.size, offset + length);
        if (end <= offset) return new Uint8Array(0);
        const bytes = await this.readChunks(doc, offset, end);
        if (bytes) return bytes;
        const current = await this.files.findOne({ _id: key });
        if (current?.v === doc.v) {
          throw new StorageError(`mongodb ${operation}: chunks of ${key} are missing (version ${doc.v})`, { context: { connector, operation, key } });
        }
        if (attempt >= readAttempts) {
          throw new StorageError(`mongodb ${operation}: ${key} was replaced during ${readAttempts} reads in a row`, {
            retriable: true,
            context: { connector, operation, key },
          });
        }
        doc = current;
      }
    } catch (cause) {
      throw mongoFailure(cause, operation, key);
    }
  }

  /** The bytes, or undefined when a chunk is gone (the version was replaced or deleted meanwhile). */
  private async readChunks(doc: ObjectDoc, offset: number, end: number): Promise<Uint8Array | undefined> {
    const out = new Uint8Array(end - offset);
    for (let n = Math.floor(offset / doc.chunkSize); n * doc.chunkSize < end; n++) {
      const chunk = await this.chunks.findOne({ _id: chunkId(doc.v, n) });
      if (!chunk) return undefined;
      const data = chunk.data.buffer;
      const chunkStart = n * doc.chunkSize;
      const from = Math.max(offset, chunkStart) - chunkStart;
      const to = Math.min(end, chunkStart + data.byteLength) - chunkStart;
      out.set(data.subarray(from, to), chunkStart + from - offset);
    }
    return out;
  }

  /** One `delete` command with a statement per chunk `_id` (each found by its key, also on FerretDB). */
  private async deleteChunks(v: string, size: number, sizeOfChunk: number): Promise<void> {
    const count = Math.ceil(size / sizeOfChunk);
    if (count === 0) return;
    await this.chunks.bulkWrite(
      Array.from({ length: count }, (_, n) => ({ deleteOne: { filter: { _id: chunkId(v, n) } } })),
      { ordered: false },
    );
  }

  // ------------------------------------------------------------------ records (RecordStore)

  async writeRecords(key: string, set: RecordSet): Promise<RecordWriteResult> {
    const collection = this.recordCollection(set.memoryType, key);
    const w = new ObjectId().toHexString();
    let docs: RecordDoc[] = [];
    try {
      await this.ready();
      const nestedArrays = await this.supportsNestedArrays();
      docs = set.records.map((record) => toDocument(key, w, record, nestedArrays));
      await this.ensureIndexes(collection, () => this.createRecordIndexes(collection));
      if (docs.length > 0) await collection.insertMany(docs, { ordered: false });
      const pointer: RecordKeyDoc = { _id: key, w, collection: collection.collectionName, rows: docs.length, modified: new Date() };
      const previous = await swap(this.recordKeys, pointer);
      if (previous) await this.db.collection(previous.collection).deleteMany({ object_key: key, w: previous.w });
    } catch (cause) {
      await collection.deleteMany({ object_key: key, w }).catch(() => undefined);
      throw mongoFailure(cause, 'writeRecords', key);
    }
    let bytes = 0;
    for (const doc of docs) bytes += BSON.calculateObjectSize(doc);
    return { rows: docs.length, bytes, container: `${this.database}.${collection.collectionName}` };
  }

  async readRecords(key: string): Promise<ObservationRecord[]> {
    const operation = 'readRecords';
    try {
      await this.ready();
      let pointer = await this.recordKeys.findOne({ _id: key });
      for (let attempt = 1; ; attempt++) {
        if (!pointer) throw new NotFoundError(key, { context: { connector, operation } });
        const docs = await this.db.collection<RecordDoc>(pointer.collection).find({ object_key: key, w: pointer.w }).toArray();
        if (docs.length === pointer.rows) return docs.map(fromDocument).sort(bySourcePosition);
        const current = await this.recordKeys.findOne({ _id: key });
        if (current?.w === pointer.w) {
          throw new StorageError(`mongodb ${operation}: ${key} lists ${pointer.rows} rows but ${docs.length} are stored`, { context: { connector, operation, key } });
        }
        if (attempt >= readAttempts) {
          throw new StorageError(`mongodb ${operation}: ${key} was rewritten during ${readAttempts} reads in a row`, {
            retriable: true,
            context: { connector, operation, key },
          });
        }
        pointer = current;
      }
    } catch (cause) {
      throw mongoFailure(cause, operation, key);
    }
  }

  async *listKeys(prefix: string): AsyncIterable<string> {
    try {
      await this.ready();
      const cursor = this.recordKeys.find({ _id: { $regex: `^${escapeRegex(prefix)}` } }, { projection: { _id: 1 } }).sort({ _id: 1 });
      for await (const doc of cursor) yield doc._id;
    } catch (cause) {
      throw mongoFailure(cause, 'listKeys', prefix);
    }
  }

  async deleteRecords(key: string): Promise<void> {
    try {
      await this.ready();
      const previous = await this.recordKeys.findOneAndDelete({ _id: key });
      if (previous) await this.db.collection(previous.collection).deleteMany({ object_key: key, w: previous.w });
    } catch (cause) {
      throw mongoFailure(cause, 'deleteRecords', key);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.client.close();
  }

  /**
   * Connects once. The driver's own connect-on-first-use closes the client for good when no server
   * answers; an explicit connect that failed can be tried again, so a retry reaches a server that is back.
   */
  private async ready(): Promise<void> {
    if (this.closed) throw new StorageError('mongodb: the storage is closed', { context: { connector } });
    if (!this.connecting) {
      const connecting = this.client.connect();
      this.connecting = connecting;
      connecting.catch(() => {
        if (this.connecting === connecting) this.connecting = undefined;
      });
    }
    await this.connecting;
  }

  /** FerretDB 1.x cannot store nested arrays (Polygon coordinates); MongoDB and FerretDB 2 can. */
  private supportsNestedArrays(): Promise<boolean> {
    if (!this.nestedArrays) {
      const asked = this.client
        .db('admin')
        .command({ buildInfo: 1 })
        .then((info) => !/^v?1\./.test(String(info.ferretdbVersion ?? '')));
      this.nestedArrays = asked;
      asked.catch(() => {
        if (this.nestedArrays === asked) this.nestedArrays = undefined;
      });
    }
    return this.nestedArrays;
  }

  /** `<prefix><memoryType>`; memory types become collection names, so only safe characters. */
  private recordCollection(memoryType: string, key: string): Collection<RecordDoc> {
    if (!/^[A-Za-z0-9_-]+$/.test(memoryType)) {
      throw new StorageError(`mongodb writeRecords: memory type ${JSON.stringify(memoryType)} cannot name a collection (letters, digits, _ and - only)`, {
        context: { connector, operation: 'writeRecords', key },
      });
    }
    return this.db.collection<RecordDoc>(`${this.prefix}${memoryType}`);
  }

  private async createRecordIndexes(collection: Collection<RecordDoc>): Promise<void> {
    await collection.createIndex({ object_key: 1, w: 1 });
    await collection.createIndex({ observed_at: 1 });
    if (this.spatialIndex) await collection.createIndex({ geometry: '2dsphere' });
  }

  private async ensureIndexes(collection: Collection<any>, create: () => Promise<void>): Promise<void> {
    const name = collection.collectionName;
    let done = this.indexed.get(name);
    if (!done) {
      done = create();
      this.indexed.set(name, done);
      // A failed attempt (server down) is tried again by the next write.
      done.catch(() => this.indexed.delete(name));
    }
    await done;
  }
}

function chunkId(v: string, n: number): string {
  return `${v}/${n}`;
}

/**
 * Puts `doc` in place of the document with its `_id` in one atomic single-document write and returns
 * the one it replaced. Two first writes of one key race to insert; the loser retries as a replace.
 */
async function swap<T extends { _id: string }>(collection: Collection<T>, doc: T): Promise<T | null> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await collection.findOneAndReplace({ _id: doc._id } as never, doc, { upsert: true, returnDocument: 'before' })) as T | null;
    } catch (error) {
      if (!(error instanceof MongoError && error.code === duplicateKey) || attempt >= 5) throw error;
    }
  }
}

/**
 * Driver errors → typed errors: authentication (18) and authorization (13) failures are fatal at
 * once; no server reachable, network errors, elections and shutdowns are retriable.
 */
export function mongoFailure(cause: unknown, operation: string, key?: string): StorageError {
  if (!(cause instanceof MongoError)) return storageFailure(cause, { connector, operation, key });
  const code = typeof cause.code === 'number' ? cause.code : undefined;
  if (code !== undefined && accessDeniedCodes.has(code)) return storageFailure(cause, { connector, operation, key, accessDenied: true, notFound: false });
  const retriable =
    cause instanceof MongoNetworkError ||
    cause instanceof MongoServerSelectionError ||
    cause.hasErrorLabel('RetryableWriteError') ||
    cause.hasErrorLabel('ResetPool') ||
    (code !== undefined && retriableServerCodes.has(code));
  const context: ErrorContext = { connector, operation, ...(key === undefined ? {} : { key }) };
  return new StorageError(`mongodb ${operation} failed (${cause.name}${code === undefined ? '' : ` code ${code}`})`, { cause, retriable, context });
}

/** `mongodb://hosts` without credentials, and the database named in the path, if any. */
export function parseConnectionString(url: string): { hosts: string; database?: string } {
  const match = /^(mongodb(?:\+srv)?):\/\/(?:[^@/?#]*@)?([^/?#]*)(?:\/([^?#]*))?/.exec(url);
  if (!match) throw new ConfigError('mongodb: connection_string must start with mongodb:// or mongodb+srv://');
  const database = match[3] ? decodeURIComponent(match[3]) : undefined;
  return { hosts: `${match[1]}://${match[2]}`, ...(database ? { database } : {}) };
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function toDocument(objectKey: string, w: string, r: ObservationRecord, nestedArrays: boolean): RecordDoc {
  const common = {
    object_key: objectKey,
    w,
    kind: r.kind,
    source: r.position.source,
    partition: r.position.partition,
    offset: r.position.offset,
    size: r.size,
    id: r.id,
    dataset: r.dataset,
    variable: r.variable,
    // int64, exact to the microsecond; `observed_at` (milliseconds) is for date queries and TTL indexes.
    time_us: Long.fromNumber(r.timeUs),
    observed_at: new Date(Math.floor(r.timeUs / 1000)),
    value: r.value,
    ...(r.key === undefined ? {} : { key: r.key }),
  };
  if (r.kind === 'point') {
    return {
      ...common,
      geometry: { type: 'Point', coordinates: [r.lon, r.lat] },
      unit: r.unit,
      quality: r.quality,
      station: r.station,
      elevation: r.elevation,
      attrs: r.attrs,
    };
  }
  const geometry = nestedArrays || r.geometry.type === 'Point' ? { geometry: r.geometry } : { geometry_json: JSON.stringify(r.geometry) };
  return { ...common, ...geometry, properties: r.properties, bbox: r.bbox };
}

function fromDocument(doc: RecordDoc): ObservationRecord {
  const base = {
    position: { source: doc.source, partition: doc.partition, offset: doc.offset },
    size: doc.size,
    id: doc.id,
    dataset: doc.dataset,
    timeUs: typeof doc.time_us === 'number' ? doc.time_us : doc.time_us.toNumber(),
    ...(doc.key === undefined ? {} : { key: doc.key }),
  };
  if (doc.kind === 'point') {
    const [lon, lat] = doc.geometry!.coordinates as number[];
    return {
      ...base,
      kind: 'point',
      variable: doc.variable ?? '',
      lon: lon!,
      lat: lat!,
      value: doc.value ?? Number.NaN,
      unit: doc.unit ?? null,
      quality: doc.quality ?? null,
      station: doc.station ?? null,
      elevation: doc.elevation ?? null,
      attrs: doc.attrs ?? null,
    };
  }
  return {
    ...base,
    kind: 'vector',
    variable: doc.variable,
    geometry: doc.geometry ?? (JSON.parse(doc.geometry_json!) as GeoJsonGeometry),
    properties: doc.properties ?? null,
    value: doc.value,
    bbox: doc.bbox!,
  };
}

function bySourcePosition(a: ObservationRecord, b: ObservationRecord): number {
  const x = a.position;
  const y = b.position;
  if (x.source !== y.source) return x.source < y.source ? -1 : 1;
  return x.partition - y.partition || x.offset - y.offset;
}
