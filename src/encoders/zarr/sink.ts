import type { Backend } from '../../core/backend.js';
import type { Batch } from '../../core/batch.js';
import { createHash } from 'node:crypto';
import { leaseOwner } from '../../catalog/lease-owner.js';
import { ConfigError, StorageError } from '../../core/errors.js';
import type { RasterRecord } from '../../core/raster.js';
import type { PointRecord } from '../../core/record.js';
import type { ZarrOptions } from '../../config/zarr.js';
import { periodStartUs, sanitizeSegment, timeTokenOf, type CompiledTemplate } from '../../stages/object-key.js';
import { chunkCodec } from './codecs.js';
import type { StoreLayout } from './metadata.js';
import { ZarrStore } from './store.js';
import { appendRasterTiles, gridId } from './raster.js';
import { appendPoints, pointDifferences } from './timeseries.js';

export interface StoreAppend {
  /** The store's root key (the catalog row's key). */
  root: string;
  /** sha256 of the metadata written last: the store's visible state. */
  sha256: string;
  /** Every key of the store and their bytes, after the append. */
  keys: number;
  bytes: number;
  /** Values the store holds (station × time cells that are set). */
  observations: number;
}

/**
 * The tier writer's "store" sink for `format: zarr`: a batch is not an object of its own but an
 * append to the store of its (memory type, partition path), `{memory type}/{partition}.zarr`;
 * raster tiles append to the store of their (memory type, partition path, variable, grid),
 * `{memory type}/{partition}/{variable}-{grid}.zarr`. Callers run an append and its catalog row
 * under `exclusive`, so the work on one store runs one at a time, in the order it was asked for.
 */
export class ZarrStoreSink {
  readonly format = 'zarr';
  readonly layout: StoreLayout;
  /** Who this sink is when it holds a store's lease in the catalog (one per opened tier, so per worker). */
  readonly leaseOwner = leaseOwner();
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(
    readonly backend: Backend,
    readonly options: ZarrOptions,
    private readonly template: CompiledTemplate,
  ) {
    this.layout = { format: options.zarrFormat, separator: options.dimensionSeparator, codec: chunkCodec(options.compression, options.compressionLevel, options.zarrFormat) };
  }

  get codec(): { name: string; level: number | null } {
    return { name: this.layout.codec.name, level: this.layout.codec.level };
  }

  rootOf(memoryType: string, partitionPath: string): string {
    return `${sanitizeSegment(memoryType)}/${partitionPath}.zarr`;
  }

  /** The store of a raster tile: one array per (memory type, partition path, variable, grid). */
  rasterRootOf(memoryType: string, partitionPath: string, tile: Pick<RasterRecord, 'variable' | 'scene'>): string {
    return `${sanitizeSegment(memoryType)}/${partitionPath}/${sanitizeSegment(tile.variable)}-${gridId(tile.scene)}.zarr`;
  }

  /** Runs `work` after all earlier work on the store at `root` has settled: one append (and its catalog row) at a time. */
  async exclusive<T>(root: string, work: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(root) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(work);
    this.queues.set(root, run);
    try {
      return await run;
    } finally {
      if (this.queues.get(root) === run) this.queues.delete(root);
    }
  }

  /** Appends a batch of points to its store (call under `exclusive(rootOf(…))`). */
  async append(batch: Batch): Promise<StoreAppend> {
    if (batch.kind !== 'point') throw new ConfigError(`format zarr stores point time series and raster records; ${batch.kind} records of ${batch.memoryType} need another format (vector_backend)`);
    const root = this.rootOf(batch.memoryType, batch.partitionPath);
    const records = batch.records as PointRecord[];
    const store = new ZarrStore(this.backend, root, this.layout);
    const result = await appendPoints(store, records, this.seriesOptions(records[0]!.timeUs));
    return { root, sha256: result.sha256, ...(await this.size(store)), observations: result.observations };
  }

  /**
   * Appends tiles of one variable and grid to their store (call under `exclusive(rasterRootOf(…))`):
   * each tile's time step takes its index from the period's start by `time_step`, and the tiles
   * fill the chunks they cover. `observations` is the time steps the array has.
   */
  async appendRaster(memoryType: string, partitionPath: string, tiles: readonly RasterRecord[]): Promise<StoreAppend> {
    const root = this.rasterRootOf(memoryType, partitionPath, tiles[0]!);
    const store = new ZarrStore(this.backend, root, this.layout);
    const result = await appendRasterTiles(store, tiles, {
      timeStepUs: this.options.timeStepMs * 1000,
      originUs: periodStartUs(timeTokenOf(this.template)!, tiles[0]!.timeUs),
      chunks: this.options.chunks,
    });
    return { root, sha256: result.sha256, ...(await this.size(store)), observations: result.timeSteps };
  }

  private async size(store: ZarrStore): Promise<{ keys: number; bytes: number }> {
    const keys = await store.keys();
    return { keys: keys.length, bytes: keys.reduce((n, k) => n + k.size, 0) };
  }

  /** What a store holds now: the digest of its consolidated metadata, its bytes and values. */
  async state(root: string): Promise<{ sha256: string; bytes: number; observations: number }> {
    const store = new ZarrStore(this.backend, root, this.layout);
    const last = this.layout.format === 2 ? '.zmetadata' : 'zarr.json';
    const bytes = await store.getMaybe(last);
    if (bytes === undefined) throw new StorageError(`${root} is not a Zarr store (no ${last})`, { context: { key: root } });
    const meta = JSON.parse(Buffer.from(bytes).toString('utf8')) as { metadata?: Record<string, { earthmem_observations?: number }>; attributes?: { earthmem_observations?: number } };
    const keys = await store.keys();
    return {
      sha256: createHash('sha256').update(bytes).digest('hex'),
      bytes: keys.reduce((n, k) => n + k.size, 0),
      observations: (this.layout.format === 2 ? meta.metadata?.['.zattrs']?.earthmem_observations : meta.attributes?.earthmem_observations) ?? 0,
    };
  }

  /** The records' values as the store has them (the later of two records of one cell wins): what differs, in words. */
  async differences(memoryType: string, partitionPath: string, records: readonly PointRecord[]): Promise<string[]> {
    const root = this.rootOf(memoryType, partitionPath);
    const store = new ZarrStore(this.backend, root, this.layout);
    return pointDifferences(store, records, this.seriesOptions(records[0]!.timeUs));
  }

  private seriesOptions(timeUs: number) {
    return {
      timeStepUs: this.options.timeStepMs * 1000,
      originUs: periodStartUs(timeTokenOf(this.template)!, timeUs),
      stationChunk: this.options.timeseriesChunks[0],
      timeChunk: this.options.timeseriesChunks[1],
    };
  }

  /** Every key of a store, for delete and copy. */
  async keysOf(root: string): Promise<{ key: string; size: number }[]> {
    return new ZarrStore(this.backend, root, this.layout).keys();
  }
}
