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

const sources: { [K in SourceConfig['type']]: (c: Extract<SourceConfig, { type: K }>) => Promise<Source> } = {
  file: async (c) => new (await import('../../connectors/local-file/source.js')).FileSource(c),
};

const backends: { [K in BackendConfig['type']]: (c: Extract<BackendConfig, { type: K }>) => Promise<Backend> } = {
  local_file: async (c) => new (await import('../../connectors/local-file/storage.js')).LocalFileStorage(c),
};

const deadLetters: { [K in DeadLetterConfig['type']]: (c: Extract<DeadLetterConfig, { type: K }>) => Promise<DeadLetterSink> } = {
  local_file: async (c) => new (await import('../../connectors/local-file/dead-letter.js')).LocalFileDeadLetterSink(c),
};

const catalogs: { [K in CatalogConfig['type']]: (c: Extract<CatalogConfig, { type: K }>) => Promise<Catalog> } = {
  sqlite: async (c) => new (await import('../catalog/sqlite.js')).SqliteCatalog(c.path),
};

export function createSource(config: SourceConfig): Promise<Source> {
  return (sources[config.type] as (c: SourceConfig) => Promise<Source>)(config);
}

export function createBackend(config: BackendConfig): Promise<Backend> {
  return (backends[config.type] as (c: BackendConfig) => Promise<Backend>)(config);
}

export function createDeadLetterSink(config: DeadLetterConfig): Promise<DeadLetterSink> {
  return (deadLetters[config.type] as (c: DeadLetterConfig) => Promise<DeadLetterSink>)(config);
}

export function createCatalog(config: CatalogConfig): Promise<Catalog> {
  return (catalogs[config.type] as (c: CatalogConfig) => Promise<Catalog>)(config);
}
