import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Observable, type OperatorFunction } from 'rxjs';
import { batchProvenance, type ProvenanceRange } from '../core/batch.js';
import { EarthMemoryError, StorageError } from '../core/errors.js';
import { failpoint } from '../core/failpoint.js';
import type { RasterRecord } from '../core/raster.js';
import type { DeadLetter, ObservationRecord, SourcePosition } from '../core/record.js';
import { retryOptions, withRetry, type RetryReport } from '../core/retry.js';
import type { Catalog, CatalogEntry, CatalogRow, PartitionClaim, RasterInfo } from '../catalog/catalog.js';
import { BlockAssembler } from '../encoders/cog/blocks.js';
import { CogReader, readWindow } from '../encoders/cog/reader.js';
import type { CogWriter } from '../encoders/cog/writer.js';
import { sanitizeSegment } from '../stages/object-key.js';
import { catalogStoreAppend, indexEntry, withStoreLock, type RasterSink, type StoreSink, type Tier } from './tier-writer.js';

/** A tile routed to its tier, with what it holds of the in-flight budget (released once the tile is in its writer). */
export interface RoutedTile {
  tile: RasterRecord;
  memoryType: string;
  tier: Tier;
  held: { position: SourcePosition; size: number };
  /** The envelope, for the dead letter if the tile does not fit its scene. */
  payload: Uint8Array;
}

/** A tile envelope as read: decoded (and routed) by the assembly, one at a time, so decoded pixels never queue up. */
export interface PendingTile {
  payload: Uint8Array;
  key: string | null;
  held: { position: SourcePosition; size: number };
}

export interface SceneSettings {
  /** Decodes and routes a tile; a bad or unclassified one becomes a dead letter (sent on by the caller). */
  decode(pending: PendingTile): Promise<RoutedTile | undefined>;
  /** A decoded tile that does not fit its scene goes to the dead letter. */
  deadLetter(entry: DeadLetter): void;
  /** An incomplete scene is written this long after its first tile; null: only at the end of a bounded source. */
  maxAgeMs: number | null;
  maxOpenScenes: number;
  memoryPerScene: number;
  tmpDir: string | undefined;
  /** At the end of the input: true writes open scenes (bounded source: partial ones too); false drops them unacked (drain: redelivered). */
  writeAtEnd(): boolean;
  catalog: Catalog;
  /** Releases a tile's budget once its pixels are in the writer. */
  unload(held: readonly { size: number }[]): void;
  retry: RetryReport & { catalog: Parameters<typeof retryOptions>[1] };
  /** Claims of the scene's partitions (shared sources): the catalog upsert is fenced by them. */
  claims(positions: readonly SourcePosition[]): PartitionClaim[];
  log(line: string): void;
}

/** How a scene ended: written (complete or partial), or dropped unwritten at a drain. */
export type SceneOutcome =
  | { kind: 'scene'; entry: CatalogEntry; tier: Tier; memoryType: string; held: { position: SourcePosition; size: number }[]; durable: true }
  | { kind: 'scene-dropped'; held: { position: SourcePosition; size: number }[]; durable: false }
  /** A tile of a scene whose complete COG is already catalogued (a redelivery, a replay): acknowledged, nothing rewritten. */
  | { kind: 'tile-durable'; held: { position: SourcePosition; size: number }[]; durable: true };

/** Scenes known complete in the catalog, remembered for this many (a replay's tiles then cost no catalog lookup). */
const COMPLETE_MEMORY = 4096;

/** What every open scene has: its identity, its first tile's description, the tiles taken so far. */
interface SceneBase {
  id: string;
  tier: Tier;
  memoryType: string;
  partitionPath: string;
  first: Omit<RasterRecord, 'pixels'>;
  /** Windows seen (`x,y,w,h`): a tile sent twice is acknowledged, its pixels used once. */
  windows: Set<string>;
  held: { position: SourcePosition; size: number }[];
  bbox: [number, number, number, number];
  openedAt: number;
}

/** A scene bound for a COG. */
interface OpenScene extends SceneBase {
  kind: 'cog';
  key: string;
  sink: RasterSink;
  writer: CogWriter;
  blocks: BlockAssembler;
  /** The scene's COG already catalogued (a late tile rebuilds it): its provenance is kept. */
  previous: CatalogRow | undefined;
}

/**
 * A scene bound for a Zarr store: its tiles (pixels and all) until it is appended, when all its
 * pixels came, at max_age, or once they fill memory_per_scene (the rest of the scene appends
 * later: appends merge into the chunks they cover).
 */
interface OpenStoreScene extends SceneBase {
  kind: 'zarr';
  sink: StoreSink;
  tiles: RasterRecord[];
  bytes: number;
  /** Pixels of distinct windows: the scene is complete when they cover it. */
  covered: number;
}

const identityOf = (t: RoutedTile) => JSON.stringify([t.tier.name, t.memoryType, t.tile.dataset, t.tile.variable, t.tile.scene.sceneId, t.tile.timeUs]);

/** `20240301T120000Z`: the scene's time in its key. */
function basicTime(timeUs: number): string {
  return new Date(Math.floor(timeUs / 1000)).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/**
 * The object key of a scene: `<memory_type>/<organization>/<scene_id>_<variable>_<time>.tif`,
 * deterministic from the scene's identity, so a replay or a late tile writes the same key.
 */
export function sceneKey(sink: RasterSink, memoryType: string, tile: Pick<RasterRecord, 'kind' | 'dataset' | 'variable' | 'timeUs' | 'scene'>): { key: string; partitionPath: string } {
  const partitionPath = sink.template.expand(tile as unknown as ObservationRecord, memoryType);
  const name = `${sanitizeSegment(tile.scene.sceneId)}_${sanitizeSegment(tile.variable)}_${basicTime(tile.timeUs)}${sink.raster.extension}`;
  return { key: `${sanitizeSegment(memoryType)}/${partitionPath}/${name}`, partitionPath };
}

/**
 * Scene assembly: tiles (any order, any partition) go into one CogWriter per scene through a
 * BlockAssembler (tiles not aligned to the COG's blocks are buffered until their blocks are full).
 * A scene is written when all its pixels came, when max_age passes (missing blocks nodata,
 * catalogued partial), when more than max_open_scenes are open (the oldest), or at the end of a
 * bounded source. A tile of a scene already catalogued rebuilds it: the earlier COG's complete
 * blocks are read back into the new writer. Each written scene comes out once, with all its
 * tiles' positions, after its COG is durable and catalogued.
 */
export function assembleScenes(settings: SceneSettings): OperatorFunction<PendingTile, SceneOutcome> {
  return (tiles) =>
    new Observable<SceneOutcome>((subscriber) => {
      const open = new Map<string, OpenScene | OpenStoreScene>();
      // Insertion-ordered: the oldest is forgotten first.
      const complete = new Set<string>();
      const remember = (id: string) => {
        complete.add(id);
        if (complete.size > COMPLETE_MEMORY) complete.delete(complete.values().next().value!);
      };
      let chain: Promise<void> = Promise.resolve();
      const writes = new Set<Promise<void>>();
      let failed = false;
      const fail = (error: unknown) => {
        if (failed) return;
        failed = true;
        for (const scene of open.values()) if (scene.kind === 'cog') void scene.writer.abort();
        subscriber.error(error);
      };
      const write = (scene: OpenScene | OpenStoreScene) => {
        open.delete(scene.id);
        const done = (scene.kind === 'cog' ? writeScene(scene, settings) : appendScene(scene, settings)).then((outcome) => {
          if (outcome.kind === 'scene' && outcome.entry.raster?.partial === false) remember(scene.id);
          subscriber.next(outcome);
        }, fail);
        writes.add(done);
        void done.finally(() => writes.delete(done));
      };
      const writeOldest = () => {
        const oldest = [...open.values()].sort((a, b) => a.openedAt - b.openedAt)[0]!;
        settings.log(`raster: more than ${settings.maxOpenScenes} scenes open: writing ${oldest.kind === 'cog' ? oldest.key : `the tiles of ${oldest.first.scene.sceneId} to ${oldest.sink.zarr.rasterRootOf(oldest.memoryType, oldest.partitionPath, oldest.first)}`} now, partial`);
        write(oldest);
      };
      const step = (work: () => Promise<void>) => {
        chain = chain.then(() => (failed ? undefined : work())).catch(fail);
      };
      const timer =
        settings.maxAgeMs === null
          ? undefined
          : setInterval(() => {
              step(async () => {
                const now = Date.now();
                for (const scene of [...open.values()]) if (now - scene.openedAt >= settings.maxAgeMs!) write(scene);
              });
            }, Math.max(50, Math.min(1000, settings.maxAgeMs / 4)));
      timer?.unref();
      const subscription = tiles.subscribe({
        next: (pending) =>
          step(async () => {
            const routed = await settings.decode(pending);
            if (routed === undefined) return;
            const id = identityOf(routed);
            const store = routed.tier.raster === undefined ? routed.tier.rasterStore : undefined;
            if (store !== undefined) {
              let scene = open.get(id);
              if (scene === undefined) {
                if (open.size >= settings.maxOpenScenes) writeOldest();
                open.set(id, (scene = openStoreScene(routed, id, store)));
              }
              if (scene.kind !== 'zarr') throw new StorageError(`tier ${routed.tier.name} changed from COG to Zarr during a run`);
              addStoreTile(scene, routed, settings);
              if (scene.covered >= scene.first.scene.width * scene.first.scene.height || scene.bytes >= settings.memoryPerScene) write(scene);
              return;
            }
            let scene = open.get(id) as OpenScene | undefined;
            if (scene === undefined && complete.has(id)) {
              subscriber.next({ kind: 'tile-durable', held: [routed.held], durable: true });
              return;
            }
            if (scene === undefined) {
              if (open.size >= settings.maxOpenScenes) writeOldest();
              const opened = await openScene(routed, id, settings);
              if (opened === 'complete') {
                remember(id);
                subscriber.next({ kind: 'tile-durable', held: [routed.held], durable: true });
                return;
              }
              scene = opened;
              open.set(id, scene);
            }
            await addTile(scene, routed, settings);
            if (scene.blocks.complete) write(scene);
          }),
        error: (error: unknown) => fail(error),
        complete: () =>
          step(async () => {
            if (timer) clearInterval(timer);
            for (const scene of [...open.values()]) {
              if (settings.writeAtEnd()) write(scene);
              else {
                open.delete(scene.id);
                if (scene.kind === 'cog') await scene.writer.abort();
                subscriber.next({ kind: 'scene-dropped', held: scene.held, durable: false });
              }
            }
            while (writes.size > 0) await Promise.all([...writes]);
            if (!failed) subscriber.complete();
          }),
      });
      return () => {
        subscription.unsubscribe();
        if (timer) clearInterval(timer);
      };
    });
}

/** A new scene's writer; 'complete' when the scene's COG is catalogued complete already (the tile is a redelivery). */
async function openScene(routed: RoutedTile, id: string, settings: SceneSettings): Promise<OpenScene | 'complete'> {
  const { tile, tier, memoryType } = routed;
  const sink = tier.raster!;
  const { key, partitionPath } = sceneKey(sink, memoryType, tile);
  const previous = (await withRetry(() => settings.catalog.list({ tier: tier.name, key }), retryOptions(`catalog ${settings.catalog.type}`, settings.retry.catalog, settings.retry)))[0];
  if (previous?.raster?.partial === false) return 'complete';
  const { scene } = tile;
  const writer = sink.raster.open(
    { width: scene.width, height: scene.height, dtype: scene.dtype, bands: scene.bands, geotransform: scene.geotransform, crs: scene.crs, nodata: scene.nodata },
    { memoryBytes: settings.memoryPerScene, ...(settings.tmpDir === undefined ? {} : { tmpDir: settings.tmpDir }) },
  );
  const [blockWidth, blockHeight] = sink.raster.options.blocksize;
  const blocks = new BlockAssembler({
    width: scene.width, height: scene.height, bands: scene.bands, dtype: scene.dtype, fill: writer.scene.nodataStored ?? 0, blockWidth, blockHeight,
  });
  const { pixels: _pixels, ...first } = tile;
  const open: OpenScene = {
    kind: 'cog', id, key, tier, sink, memoryType, partitionPath, first, writer, blocks,
    windows: new Set(), held: [], bbox: [...tile.bbox], openedAt: Date.now(), previous,
  };
  if (previous !== undefined) await readBack(open, settings);
  return open;
}

/**
 * A late tile of a partial scene: its catalogued COG gives back the tile windows it was built
 * from (so pixels never given stay missing, and the new scene completes exactly when the missing
 * tiles have come). Complete scenes are never reopened (their tiles are redeliveries).
 */
async function readBack(scene: OpenScene, settings: SceneSettings): Promise<void> {
  const { backend } = scene.sink;
  const reader = await CogReader.open((offset, length) =>
    withRetry(() => backend.getRange(scene.key, offset, length), retryOptions(scene.sink.target, scene.sink.retry, settings.retry)),
  );
  const full = reader.info.levels[0]!;
  const { width, height } = scene.first.scene;
  const [blockWidth, blockHeight] = scene.sink.raster.options.blocksize;
  if (full.tileWidth !== blockWidth || full.tileHeight !== blockHeight || full.width !== width || full.height !== height) {
    throw new StorageError(`${scene.key} has another grid than the scene's tiles (blocks ${full.tileWidth} × ${full.tileHeight}, ${full.width} × ${full.height}): it cannot be rebuilt in place`, {
      context: { key: scene.key, tier: scene.tier.name },
    });
  }
  const info = scene.previous!.raster;
  const put = async (x: number, y: number, w: number, h: number, bytes: Uint8Array) => {
    scene.windows.add(`${x},${y},${w},${h}`);
    for (const block of scene.blocks.put(x, y, w, h, bytes)) await scene.writer.writeBlock(block.col, block.row, block.pixels);
  };
  // Decoded tiles of about two block rows are kept: windows come in row-major order.
  const cache = new Map<number, Awaited<ReturnType<CogReader['tile']>>>();
  for (const [x, y, w, h] of [...(info?.windows ?? [])].sort((a, b) => a[1] - b[1] || a[0] - b[0])) {
    await put(x, y, w, h, await readWindow(reader, x, y, w, h, 0, cache));
    for (const index of cache.keys()) if (index < Math.floor(y / blockHeight) * full.across - full.across) cache.delete(index);
  }
  settings.log(`raster: rebuilding ${scene.key} for a late tile (${reader.fetched} bytes of its COG read back)`);
}

/** Why a tile does not fit the scene its first tile described, or undefined. */
function mismatchOf(first: Omit<RasterRecord, 'pixels'>, tile: RasterRecord): string | undefined {
  const s = first.scene;
  const t = tile.scene;
  const nodataDiffers = t.nodata !== s.nodata && !(t.nodata !== null && s.nodata !== null && Number.isNaN(t.nodata) && Number.isNaN(s.nodata));
  if (t.width === s.width && t.height === s.height && t.dtype === s.dtype && t.bands === s.bands && t.epsg === s.epsg && !nodataDiffers && t.geotransform.every((v, i) => v === s.geotransform[i])) return undefined;
  return `tile at (${tile.x}, ${tile.y}) of scene ${s.sceneId}: ${t.width} × ${t.height} ${t.dtype}×${t.bands} EPSG:${t.epsg} nodata ${t.nodata} gt [${t.geotransform.join(', ')}], but its scene's first tile says ${s.width} × ${s.height} ${s.dtype}×${s.bands} EPSG:${s.epsg} nodata ${s.nodata} gt [${s.geotransform.join(', ')}]`;
}

/**
 * Takes a tile into its open scene: one that does not fit the scene goes to the dead letter
 * ('refused'); otherwise its position is the scene's, and its pixels are to be used when its
 * window is 'new' (a tile sent twice is acknowledged, its pixels used once: 'seen').
 */
function takeTile(scene: OpenScene | OpenStoreScene, routed: RoutedTile, settings: SceneSettings): 'refused' | 'new' | 'seen' {
  const { tile } = routed;
  const mismatch = mismatchOf(scene.first, tile);
  if (mismatch !== undefined) {
    settings.deadLetter({ reason: 'scene_mismatch', message: mismatch, position: tile.position, payload: routed.payload });
    return 'refused';
  }
  scene.held.push(routed.held);
  const window = `${tile.x},${tile.y},${tile.width},${tile.height}`;
  if (scene.windows.has(window)) return 'seen';
  scene.windows.add(window);
  scene.bbox = union(scene.bbox, tile.bbox);
  return 'new';
}

async function addTile(scene: OpenScene, routed: RoutedTile, settings: SceneSettings): Promise<void> {
  const { tile } = routed;
  const taken = takeTile(scene, routed, settings);
  if (taken === 'refused') return;
  if (taken === 'new') {
    for (const block of scene.blocks.put(tile.x, tile.y, tile.width, tile.height, tile.pixels)) await scene.writer.writeBlock(block.col, block.row, block.pixels);
  }
  // Its pixels are in the writer (compressed) or in a partly filled block the scene accounts for.
  settings.unload([routed.held]);
  failpoint('raster.tile');
}

function openStoreScene(routed: RoutedTile, id: string, sink: StoreSink): OpenStoreScene {
  const { tile, tier, memoryType } = routed;
  const { pixels: _pixels, ...first } = tile;
  return {
    kind: 'zarr', id, tier, sink, memoryType, partitionPath: sink.template.expand(tile as unknown as ObservationRecord, memoryType), first,
    tiles: [], bytes: 0, covered: 0, windows: new Set(), held: [], bbox: [...tile.bbox], openedAt: Date.now(),
  };
}

function addStoreTile(scene: OpenStoreScene, routed: RoutedTile, settings: SceneSettings): void {
  const { tile } = routed;
  const taken = takeTile(scene, routed, settings);
  if (taken === 'refused') return;
  if (taken === 'new') {
    scene.tiles.push(tile);
    scene.bytes += tile.pixels.byteLength;
    scene.covered += tile.width * tile.height;
  }
  // The scene's pixels are bounded by memory_per_scene (it appends when they reach it), not by the in-flight budget.
  settings.unload([routed.held]);
  failpoint('raster.tile');
}

/**
 * Appends a scene's tiles to their Zarr store, then the store's catalog row, under the store's
 * lock; its tiles are acknowledged after. A redelivered tile writes the same cells again.
 */
async function appendScene(scene: OpenStoreScene, settings: SceneSettings): Promise<SceneOutcome> {
  const { sink, tier, first } = scene;
  const zarr = sink.zarr;
  const root = zarr.rasterRootOf(scene.memoryType, scene.partitionPath, first);
  const catalogRetry = retryOptions(`catalog ${settings.catalog.type}`, settings.retry.catalog, settings.retry);
  const fence = settings.claims(scene.held.map((h) => h.position));
  // Claims mean a shared source: other workers may append to the same store.
  const entry = await withStoreLock(sink, settings.catalog, root, catalogRetry, async () => {
    const appended = await withRetry(() => zarr.appendRaster(scene.memoryType, scene.partitionPath, scene.tiles), retryOptions(sink.target, sink.retry, settings.retry)).catch((cause: unknown) =>
      Promise.reject(cause instanceof EarthMemoryError ? cause : new StorageError(`appending tiles of ${first.scene.sceneId} to ${root} failed`, { cause, context: { stage: 'sink', connector: sink.type, key: root, tier: tier.name } })),
    );
    failpoint('raster.zarr.appended');
    return catalogStoreAppend(
      { tier, sink, catalog: settings.catalog, fence, retry: settings.retry, catalogRetry },
      appended,
      {
        memoryType: scene.memoryType, dataset: first.dataset, kind: 'raster', partitionPath: scene.partitionPath,
        timeMinUs: first.timeUs, timeMaxUs: first.timeUs, bbox: scene.bbox, provenance: batchProvenance(scene.held),
      },
    );
  }, { shared: fence.length > 0, log: settings.log });
  scene.tiles = [];
  return { kind: 'scene', entry, tier, memoryType: scene.memoryType, held: scene.held, durable: true };
}

/** Finishes the COG into a temp file (its sha256 on the way), puts it under the scene's key, catalogs it. */
async function writeScene(scene: OpenScene, settings: SceneSettings): Promise<SceneOutcome> {
  const handed = scene.blocks.handedOver;
  let missingBlocks = 0;
  for (const done of handed) if (!done) missingBlocks++;
  for (const block of scene.blocks.rest()) await scene.writer.writeBlock(block.col, block.row, block.pixels);
  const dir = await mkdtemp(join(settings.tmpDir ?? tmpdir(), 'earthmem-scene-'));
  const path = join(dir, 'scene.tif');
  try {
    const digest = createHash('sha256');
    const file = await open(path, 'w');
    let bytes = 0;
    try {
      for await (const chunk of scene.writer.finish()) {
        digest.update(chunk);
        bytes += chunk.byteLength;
        await file.write(chunk);
      }
      await file.sync();
    } finally {
      await file.close();
    }
    const sha256 = digest.digest('hex');
    const { sink } = scene;
    await withRetry(
      () => sink.backend.put(scene.key, createReadStream(path, { highWaterMark: 1 << 20 }), { contentType: sink.raster.contentType }),
      retryOptions(sink.target, sink.retry, settings.retry),
    ).catch((cause: unknown) =>
      Promise.reject(cause instanceof EarthMemoryError ? cause : new StorageError(`writing ${scene.key} failed`, { cause, context: { stage: 'sink', connector: sink.type, key: scene.key, tier: scene.tier.name } })),
    );
    failpoint('raster.put');
    const result = scene.writer.result!;
    const { first } = scene;
    const gt = first.scene.geotransform;
    const raster: RasterInfo = {
      sceneId: first.scene.sceneId,
      variable: first.variable,
      epsg: first.scene.epsg,
      width: first.scene.width,
      height: first.scene.height,
      dtype: first.scene.dtype,
      bands: first.scene.bands,
      nodata: first.scene.nodata !== null && Number.isNaN(first.scene.nodata) ? 'nan' : first.scene.nodata,
      overviews: result.levels.length - 1,
      bboxNative: [gt[0], gt[3] + gt[5] * first.scene.height, gt[0] + gt[1] * first.scene.width, gt[3]],
      partial: missingBlocks > 0,
      missingBlocks,
      tiles: scene.windows.size,
      ...(missingBlocks > 0 ? { windows: [...scene.windows].sort().map((w) => w.split(',').map(Number) as [number, number, number, number]) } : {}),
    };
    const provenance = mergeProvenance(batchProvenance(scene.held), scene.previous?.provenance ?? []);
    const entry: CatalogEntry = {
      key: scene.key,
      tier: scene.tier.name,
      backend: sink.type,
      uri: sink.uri(scene.key),
      memoryType: scene.memoryType,
      dataset: first.dataset,
      kind: 'raster',
      partitionPath: scene.partitionPath,
      format: sink.raster.format,
      codec: sink.raster.codec.name,
      codecLevel: sink.raster.codec.level,
      bytes,
      rows: scene.windows.size,
      timeMinUs: first.timeUs,
      timeMaxUs: first.timeUs,
      bbox: scene.previous === undefined ? scene.bbox : union(scene.bbox, scene.previous.bbox),
      sha256,
      provenance,
      state: 'committed',
      raster,
    };
    const fence = settings.claims(scene.held.map((h) => h.position));
    await withRetry(() => settings.catalog.upsert([entry], fence), retryOptions(`catalog ${settings.catalog.type}`, settings.retry.catalog, settings.retry));
    await indexEntry(scene.tier, entry, settings.retry);
    if (raster.partial) settings.log(`raster: ${scene.key} written partial: ${missingBlocks} of ${handed.length} blocks had no tile (nodata)`);
    return { kind: 'scene', entry, tier: scene.tier, memoryType: scene.memoryType, held: scene.held, durable: true };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const union = (a: readonly number[], b: readonly number[]): [number, number, number, number] => [Math.min(a[0]!, b[0]!), Math.min(a[1]!, b[1]!), Math.max(a[2]!, b[2]!), Math.max(a[3]!, b[3]!)];

/** The scene's provenance with an earlier build's: one range per partition. */
function mergeProvenance(now: ProvenanceRange[], before: readonly ProvenanceRange[]): ProvenanceRange[] {
  const merged = new Map<string, ProvenanceRange>();
  for (const r of [...before, ...now]) {
    const id = `${r.partition}\u0000${r.source}`;
    const m = merged.get(id);
    if (m === undefined) merged.set(id, { ...r });
    else {
      m.firstOffset = Math.min(m.firstOffset, r.firstOffset);
      m.lastOffset = Math.max(m.lastOffset, r.lastOffset);
      m.count += r.count;
    }
  }
  return [...merged.values()].sort((a, b) => (a.source < b.source ? -1 : a.source > b.source ? 1 : a.partition - b.partition));
}
