import { ConfigError, NotFoundError, StorageError } from '../core/errors.js';
import { retryPolicyOf, type RetryPolicy } from '../core/retry.js';
import type { Catalog, CatalogRow } from '../catalog/catalog.js';
import { AccessRecorder } from '../catalog/access-recorder.js';
import { createCatalog } from './connectors.js';
import { TIERS, type PipelineConfig, type TierName } from './schema.js';
import { closeTier, openTier, sinkOf, type RasterSink, type StoredContent, type Tier } from './tier-writer.js';

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

export interface WindowRead {
  /** A COG of the window: the tier's COG options, the scene's CRS, the window's geotransform. */
  bytes: Uint8Array;
  /** The window in the scene's pixels. */
  window: { x: number; y: number; width: number; height: number };
  /** Bytes fetched from the tier (IFDs and the tiles the window touches), and the whole object's size. */
  fetched: number;
  objectBytes: number;
}

/**
 * A window of a raster object by bbox (in the scene's CRS: [minX, minY, maxX, maxY]): only the
 * tiles it touches are read, with range reads, and written as a small COG.
 */
export async function readRasterWindow(storage: OpenedStorage, row: CatalogRow, bbox: readonly [number, number, number, number]): Promise<WindowRead> {
  if (row.kind !== 'raster' || row.raster == null) throw new ConfigError(`${row.key} is not a raster object (kind ${row.kind}): --bbox reads windows of COGs`);
  const sink = sinkOf(tierOf(storage, row), 'raster') as RasterSink;
  const { CogReader, readWindow } = await import('../encoders/cog/reader.js');
  const { BlockAssembler } = await import('../encoders/cog/blocks.js');
  const reader = await CogReader.open((offset, length) => sink.backend.getRange(row.key, offset, length));
  const { geotransform: gt, levels } = reader.info;
  const full = levels[0]!;
  const [minX, minY, maxX, maxY] = bbox;
  if (!(minX < maxX && minY < maxY)) throw new ConfigError(`bbox ${bbox.join(',')}: expected minx,miny,maxx,maxy with min < max`);
  const x0 = Math.max(0, Math.floor((minX - gt[0]) / gt[1]));
  const x1 = Math.min(full.width, Math.ceil((maxX - gt[0]) / gt[1]));
  const y0 = Math.max(0, Math.floor((maxY - gt[3]) / gt[5]));
  const y1 = Math.min(full.height, Math.ceil((minY - gt[3]) / gt[5]));
  if (x1 <= x0 || y1 <= y0) throw new ConfigError(`bbox ${bbox.join(',')} does not intersect ${row.key} (${row.raster.bboxNative.join(',')} in EPSG:${row.raster.epsg})`);
  const window = { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
  const writer = sink.raster.open(
    { width: window.width, height: window.height, dtype: reader.info.dtype, bands: reader.info.bands, crs: row.raster.epsg, nodata: row.raster.nodata === 'nan' ? NaN : row.raster.nodata, geotransform: [gt[0] + x0 * gt[1], gt[1], 0, gt[3] + y0 * gt[5], 0, gt[5]] },
    {},
  );
  const blocks = new BlockAssembler({ width: window.width, height: window.height, bands: reader.info.bands, dtype: reader.info.dtype, fill: writer.scene.nodataStored ?? 0, blockWidth: writer.blockWidth, blockHeight: writer.blockHeight });
  const cache = new Map<number, Awaited<ReturnType<typeof reader.tile>>>();
  for (let y = 0; y < window.height; y += writer.blockHeight) {
    const h = Math.min(writer.blockHeight, window.height - y);
    const pixels = await readWindow(reader, x0, y0 + y, window.width, h, 0, cache);
    for (const block of blocks.put(0, y, window.width, h, pixels)) await writer.writeBlock(block.col, block.row, block.pixels);
    // Source tiles above this strip are done with.
    const firstRow = Math.floor((y0 + y + h) / full.tileHeight);
    for (const index of cache.keys()) if (Math.floor(index / full.across) < firstRow) cache.delete(index);
  }
  const chunks: Uint8Array[] = [];
  for await (const chunk of writer.finish()) chunks.push(chunk);
  storage.accesses.record(row.tier, row.key);
  return { bytes: Buffer.concat(chunks), window, fetched: reader.fetched, objectBytes: row.bytes };
}
