import type { Backend } from '../core/backend.js';
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
type DeadLetterConfig = PipelineConfig['dead_letter'];
type CatalogConfig = PipelineConfig['catalog'];

type Log = (line: string) => void;

const sources: { [K in SourceConfig['type']]: (c: Extract<SourceConfig, { type: K }>, log: Log) => Promise<Source> } = {
  file: async (c) => new (await import('../../connectors/local-file/source.js')).FileSource(c),
  kafka: async (c, log) => new (await import('../../connectors/kafka/source.js')).KafkaSource(c, { log }),
};

const backends: { [K in BackendConfig['type']]: (c: Extract<BackendConfig, { type: K }>) => Promise<Backend> } = {
  local_file: async (c) => new (await import('../../connectors/local-file/storage.js')).LocalFileStorage(c),
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

export function createBackend(config: BackendConfig): Promise<Backend> {
  return (backends[config.type] as (c: BackendConfig) => Promise<Backend>)(config);
}

export function createDeadLetterSink(config: DeadLetterConfig, log: Log = () => undefined): Promise<DeadLetterSink> {
  return (deadLetters[config.type] as (c: DeadLetterConfig, log: Log) => Promise<DeadLetterSink>)(config, log);
}

export function createCatalog(config: CatalogConfig): Promise<Catalog> {
  return (catalogs[config.type] as (c: CatalogConfig) => Promise<Catalog>)(config);
}
