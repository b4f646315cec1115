import { ConfigError, NotFoundError, StorageError } from '../core/errors.js';
import { retryPolicyOf, type RetryPolicy } from '../core/retry.js';
import type { Catalog, CatalogRow } from '../catalog/catalog.js';
import { AccessRecorder } from '../catalog/access-recorder.js';
import { createCatalog } from './connectors.js';
import { TIERS, type PipelineConfig, type TierName } from './schema.js';
import { closeTier, openTier, sinkOf, type StoredContent, type Tier } from './tier-writer.js';

export type { StoredContent };

/** A pipeline's tiers and catalog opened for reading (and rehydrating) what it stored. */
export interface OpenedStorage {
  tiers: Map<TierName, Tier>;
  catalog: Catalog;
  /** Reads through this storage, counted for access-based criteria (coalesced catalog writes). */
  accesses: AccessRecorder;
  /** The catalog config's `retry`, for jobs that retry their catalog calls (retryingCatalog). */
  catalogRetry: RetryPolicy;
  close(): Promise<void>;
}

export async function openStorage(config: PipelineConfig, env: NodeJS.ProcessEnv = process.env): Promise<OpenedStorage> {
  const catalog = await createCatalog(config.catalog);
  const accesses = new AccessRecorder(catalog);
  const tiers = new Map<TierName, Tier>();
  const close = async () => {
    await accesses.close();
    for (const tier of tiers.values()) await closeTier(tier);
    await catalog.close();
  };
  try {
    for (const name of TIERS) {
      const tierConfig = config.storage.tier_configs[name];
      if (tierConfig !== undefined) tiers.set(name, await openTier(name, tierConfig, config, env));
    }
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
  return { tiers, catalog, accesses, catalogRetry: retryPolicyOf(config.catalog.retry), close };
}


function tierOf(storage: OpenedStorage, row: CatalogRow): Tier {
  const tier = storage.tiers.get(row.tier as TierName);
  if (tier === undefined) throw new ConfigError(`the catalog names tier ${row.tier} for ${row.key}, which this pipeline file does not configure`);
  return tier;
}

/** What one catalog row points at: the object's bytes (decrypted) or the rows of a record store. */
export async function readStored(storage: OpenedStorage, row: CatalogRow): Promise<StoredContent> {
  const sink = sinkOf(tierOf(storage, row), row.kind);
  if (sink.type !== row.backend) {
    throw new ConfigError(`${row.key} was written to a ${row.backend} backend; tier ${row.tier} is now configured with ${sink.type}`);
  }
  const content = await sink.read(row.key);
  storage.accesses.record(row.tier, row.key);
  return content;
}

/** Asks an archive-tier backend (Azure `archive`) to bring an object back online. */
export async function rehydrateStored(storage: OpenedStorage, row: CatalogRow, to: 'hot' | 'cool' | 'cold' = 'hot', priority: 'Standard' | 'High' = 'Standard'): Promise<void> {
  const sink = sinkOf(tierOf(storage, row), row.kind);
  if (sink.kind === 'store') throw new StorageError(`${row.key} is a Zarr store; only archived objects need rehydrating`);
  if (sink.kind !== 'objects') throw new StorageError(`${row.key} is rows in ${sink.store.type}; only archived objects need rehydrating`);
  const { backend } = sink;
  if (backend.rehydrate === undefined) {
    throw new StorageError(`${backend.type} has no offline access tier: ${row.key} is readable as it is`, { context: { connector: backend.type, key: row.key } });
  }
  await backend.rehydrate(row.key, to, priority);
}

/** The catalog row of `key` (in `tier`, or the only tier that has it). */
export async function findRow(storage: OpenedStorage, key: string, tier?: string): Promise<CatalogRow> {
  const rows = await storage.catalog.list({ key, ...(tier === undefined ? {} : { tier }) });
  if (rows.length === 0) throw new NotFoundError(key, { context: { stage: 'catalog', ...(tier ? { tier } : {}) } });
  if (rows.length > 1) throw new ConfigError(`${key} is in tiers ${rows.map((r) => r.tier).join(', ')}: say which with --tier`);
  return rows[0]!;
}
