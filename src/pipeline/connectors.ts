import type { Backend } from '../core/backend.js';
import type { ObjectIndex } from '../core/object-index.js';
import type { RecordStore } from '../core/record-store.js';
import type { CacheStore } from '../storage/cache-store.js';
import type { CacheSettings } from '../storage/cache-config.js';
import type { DeadLetterSink } from '../core/dead-letter.js';
import type { Source } from '../core/source.js';
import type { Catalog } from '../catalog/catalog.js';
import type { PipelineConfig, TierConfig } from './schema.js';

/**
 * Connector registry. Implementations load lazily (dynamic import), so a pipeline that never
 * names a backend never loads its SDK.
 */
type SourceConfig = PipelineConfig['source'];
type BackendConfig = TierConfig['primary_backend'];
type RedisConfig = NonNullable<TierConfig['index_backend']>;
type DeadLetterConfig = PipelineConfig['dead_letter'];
type CatalogConfig = PipelineConfig['catalog'];

type Log = (line: string) => void;

const sources: { [K in SourceConfig['type']]: (c: Extract<SourceConfig, { type: K }>, log: Log) => Promise<Source> } = {
  file: async (c) => new (await import('../../connectors/local-file/source.js')).FileSource(c),
  raster_file: async (c) => new (await import('../../connectors/raster-file/source.js')).RasterFileSource(c),
  kafka: async (c, log) => new (await import('../../connectors/kafka/source.js')).KafkaSource(c, { log }),
};

/**
 * What a tier gets from a backend: encoded objects in a Backend (files, object stores, Redis) or
 * records as rows in a RecordStore (databases). Each registry entry says which; nothing is
 * decided by the shape of the object it opens.
 */
export type OpenedBackend = { kind: 'objects'; backend: Backend } | { kind: 'records'; store: RecordStore };

const objects = <C>(open: (c: C) => Promise<Backend> | Backend) => async (c: C): Promise<OpenedBackend> => ({ kind: 'objects', backend: await open(c) });
const records = <C>(open: (c: C) => Promise<RecordStore> | RecordStore) => async (c: C): Promise<OpenedBackend> => ({ kind: 'records', store: await open(c) });

const backends: { [K in BackendConfig['type']]: (c: Extract<BackendConfig, { type: K }>) => Promise<OpenedBackend> } = {
  local_file: objects(async (c) => new (await import('../../connectors/local-file/storage.js')).LocalFileStorage(c)),
  zarr: objects(async (c) => new (await import('../../connectors/local-file/storage.js')).LocalFileStorage({ base_path: c.store_path, permissions: c.permissions })),
  cog: objects(async (c) => new (await import('../../connectors/local-file/storage.js')).LocalFileStorage(c)),
  network_file: objects(async (c) => (await import('../../connectors/network-file/storage.js')).NetworkFileStorage.open(c)),
  s3: objects(async (c) => (await import('../../connectors/s3/storage.js')).S3Storage.open(c)),
  gcs: objects(async (c) => new (await import('../../connectors/gcs/storage.js')).GCSStorage(c)),
  azure_blob: objects(async (c) => new (await import('../../connectors/azure-blob/storage.js')).AzureBlobStorage(c)),
  redis: objects(async (c) => new (await import('../../connectors/redis/storage.js')).RedisStorage(c)),
  postgresql: records(async (c) => (await import('../../connectors/postgresql/storage.js')).PostgreSQLStorage.open(c)),
  postgis: records(async (c) => (await import('../../connectors/postgresql/storage.js')).PostgreSQLStorage.open(c)),
  sqlite: records(async (c) => new (await import('../../connectors/sqlite/storage.js')).SQLiteStorage(c)),
  mongodb: records(async (c) => new (await import('../../connectors/mongodb/storage.js')).MongoDBStorage(c)),
  influxdb: records(async (c) => new (await import('../../connectors/influxdb/storage.js')).InfluxDBStorage(c)),
};

const deadLetters: { [K in DeadLetterConfig['type']]: (c: Extract<DeadLetterConfig, { type: K }>, log: Log) => Promise<DeadLetterSink> } = {
  local_file: async (c) => new (await import('../../connectors/local-file/dead-letter.js')).LocalFileDeadLetterSink(c),
  kafka: async (c, log) => new (await import('../../connectors/kafka/dead-letter.js')).KafkaDeadLetterSink(c, { log }),
};

const catalogs: { [K in CatalogConfig['type']]: (c: Extract<CatalogConfig, { type: K }>) => Promise<Catalog> } = {
  sqlite: async (c) => new (await import('../catalog/sqlite.js')).SqliteCatalog(c.path),
  postgresql: async (c) =>
    (await import('../catalog/postgresql.js')).PostgresCatalog.open({
      connectionString: c.connection_string,
      schema: c.schema,
      maxConnections: c.max_connections,
    }),
};

export function createSource(config: SourceConfig, log: Log = () => undefined): Promise<Source> {
  return (sources[config.type] as (c: SourceConfig, log: Log) => Promise<Source>)(config, log);
}

/** A backend from its config, tagged with what it keeps: objects (`Backend`) or rows (`RecordStore`). */
export function createBackend(config: BackendConfig): Promise<OpenedBackend> {
  return (backends[config.type] as (c: BackendConfig) => Promise<OpenedBackend>)(config);
}

export async function createObjectIndex(config: RedisConfig): Promise<ObjectIndex> {
  return new (await import('../../connectors/redis/index.js')).RedisIndex(config);
}

export async function createCacheStore(settings: CacheSettings): Promise<CacheStore> {
  if (settings.type === 'memory') {
    return new (await import('../storage/memory-cache-store.js')).MemoryCacheStore({ maxBytes: settings.max_size, policy: settings.eviction_policy });
  }
  const { resolveRedisConnection } = await import('../../connectors/redis/client.js');
  const { RedisCacheStore } = await import('../../connectors/redis/cache.js');
  return new RedisCacheStore({
    connection: resolveRedisConnection({ url: settings.url!, tls: false, connect_timeout: 5_000, command_timeout: 30_000 }),
    keyPrefix: settings.key_prefix,
    maxBytes: settings.max_size,
    policy: settings.eviction_policy,
  });
}

export function createDeadLetterSink(config: DeadLetterConfig, log: Log = () => undefined): Promise<DeadLetterSink> {
  return (deadLetters[config.type] as (c: DeadLetterConfig, log: Log) => Promise<DeadLetterSink>)(config, log);
}

export function createCatalog(config: CatalogConfig): Promise<Catalog> {
  return (catalogs[config.type] as (c: CatalogConfig) => Promise<Catalog>)(config);
}
