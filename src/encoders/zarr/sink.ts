import type { Backend } from '../../core/backend.js';
import type { Batch } from '../../core/batch.js';
import { ConfigError } from '../../core/errors.js';
import type { PointRecord } from '../../core/record.js';
import type { ZarrOptions } from '../../config/zarr.js';
import { periodStartUs, sanitizeSegment, timeTokenOf, type CompiledTemplate } from '../../stages/object-key.js';
import { chunkCodec } from './codecs.js';
import type { StoreLayout } from './metadata.js';
import { ZarrStore } from './store.js';
import { appendPoints } from './timeseries.js';

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
 * append to the store of its (memory type, partition path), `{memory type}/{partition}.zarr`.
 * Appends to one store run one at a time, in the order they were asked for.
 */
export class ZarrStoreSink {
  readonly format = 'zarr';
  readonly layout: StoreLayout;
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

  async append(batch: Batch): Promise<StoreAppend> {
    if (batch.kind !== 'point') throw new ConfigError(`format zarr stores point time series (and raster records); ${batch.kind} records of ${batch.memoryType} need another format (vector_backend)`);
    const root = this.rootOf(batch.memoryType, batch.partitionPath);
    const previous = this.queues.get(root) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(() => this.appendNow(root, batch.records as PointRecord[]));
    this.queues.set(root, run);
    try {
      return await run;
    } finally {
      if (this.queues.get(root) === run) this.queues.delete(root);
    }
  }

  private async appendNow(root: string, records: PointRecord[]): Promise<StoreAppend> {
    const token = timeTokenOf(this.template)!;
    const store = new ZarrStore(this.backend, root, this.layout);
    const result = await appendPoints(store, records, {
      timeStepUs: this.options.timeStepMs * 1000,
      originUs: periodStartUs(token, records[0]!.timeUs),
      stationChunk: this.options.timeseriesChunks[0],
      timeChunk: this.options.timeseriesChunks[1],
    });
    const keys = await store.keys();
    return { root, sha256: result.sha256, keys: keys.length, bytes: keys.reduce((n, k) => n + k.size, 0), observations: result.observations };
  }

  /** Every key of a store, for delete and copy. */
  async keysOf(root: string): Promise<{ key: string; size: number }[]> {
    return new ZarrStore(this.backend, root, this.layout).keys();
  }
}
