import { createHash } from 'node:crypto';
import { StorageError } from '../../core/errors.js';
import { failpoint } from '../../core/failpoint.js';
import type { RasterRecord, RasterScene } from '../../core/raster.js';
import { chunkKey, itemSizeOf, type ArraySpec } from './metadata.js';
import { eachBounded, encodeCells, type ZarrStore } from './store.js';

/**
 * Raster tiles as Zarr: each (memory type, dataset, variable, grid) is one store holding the
 * array `<variable>` (time, y, x), the 1-D coordinates `x` and `y` at pixel centres, `time`, and
 * the CF / rioxarray grid mapping `spatial_ref` (crs_wkt, GeoTransform), with `grid_mapping` and
 * GDAL's `_CRS` on the variable. Tiles of one time step fill the chunks they cover; time steps
 * take the same fixed-step index as point series (origin: the period's start), so tiles in any
 * order give the same bytes.
 */
export interface RasterOptions {
  timeStepUs: number;
  originUs: number;
  /** (time, y, x). */
  chunks: [number, number, number];
}

const INTENT = '.earthmem-append.json';
const TIME_CHUNK = 1024;
/** Chunk writes in flight per append (each holds one chunk's raw and compressed bytes). */
const CHUNK_WRITES = 6;
const BYTES: Record<RasterScene['dtype'], number> = { uint8: 1, int8: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, float32: 4, float64: 8 };

/** The grid's identity (size, geotransform, CRS, dtype): part of the store's key. */
export function gridId(scene: RasterScene): string {
  return createHash('sha256').update(JSON.stringify([scene.width, scene.height, scene.geotransform, scene.epsg, scene.dtype, scene.bands])).digest('hex').slice(0, 12);
}

const DATUM = 'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]]';

/** WKT 1 (GDAL's spelling) of the CRSs raster records carry; a WKT given by the producer is kept as it is. */
export function crsWkt(scene: RasterScene): string {
  if (typeof scene.crs === 'string' && /^\s*[A-Z]+\[/.test(scene.crs)) return scene.crs;
  const epsg = scene.epsg;
  if (epsg === 4326) return `${DATUM},AXIS["Latitude",NORTH],AXIS["Longitude",EAST],AUTHORITY["EPSG","4326"]]`;
  if (epsg === 3857) {
    return `PROJCS["WGS 84 / Pseudo-Mercator",${DATUM},AUTHORITY["EPSG","4326"]],PROJECTION["Mercator_1SP"],PARAMETER["central_meridian",0],PARAMETER["scale_factor",1],PARAMETER["false_easting",0],PARAMETER["false_northing",0],UNIT["metre",1,AUTHORITY["EPSG","9001"]],AXIS["Easting",EAST],AXIS["Northing",NORTH],EXTENSION["PROJ4","+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m +nadgrids=@null +wktext +no_defs"],AUTHORITY["EPSG","3857"]]`;
  }
  if ((epsg >= 32601 && epsg <= 32660) || (epsg >= 32701 && epsg <= 32760)) {
    const zone = epsg % 100;
    const south = epsg > 32700;
    return `PROJCS["WGS 84 / UTM zone ${zone}${south ? 'S' : 'N'}",${DATUM},AUTHORITY["EPSG","4326"]],PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",${zone * 6 - 183}],PARAMETER["scale_factor",0.9996],PARAMETER["false_easting",500000],PARAMETER["false_northing",${south ? 10000000 : 0}],UNIT["metre",1,AUTHORITY["EPSG","9001"]],AXIS["Easting",EAST],AXIS["Northing",NORTH],AUTHORITY["EPSG","${epsg}"]]`;
  }
  throw new StorageError(`EPSG:${epsg} has no WKT here (raster Zarr writes 4326, 3857 and UTM 326xx/327xx, or the producer's WKT)`);
}

function fillOf(scene: RasterScene): number {
  return scene.nodata ?? (scene.dtype.startsWith('float') ? Number.NaN : 0);
}

const TYPED = { uint8: Uint8Array, int8: Int8Array, uint16: Uint16Array, int16: Int16Array, uint32: Uint32Array, int32: Int32Array, float32: Float32Array, float64: Float64Array } as const;

/** `cells` fill values of the scene's dtype, little-endian (a native fill: this runs once per chunk written). */
function fillBytes(scene: RasterScene, cells: number): Uint8Array {
  const out = new Uint8Array(cells * BYTES[scene.dtype]);
  const fill = fillOf(scene);
  if (fill !== 0) new TYPED[scene.dtype](out.buffer).fill(fill);
  return out;
}

function arraySpecs(scene: RasterScene, variable: string, time: number, options: RasterOptions): ArraySpec[] {
  const [ox, dx, , oy, , dy] = scene.geotransform;
  const geographic = scene.epsg === 4326;
  const wkt = crsWkt(scene);
  return [
    scene.bands > 1
      ? { name: variable, dtype: scene.dtype, shape: [time, scene.bands, scene.height, scene.width], chunks: [options.chunks[0], 1, options.chunks[1], options.chunks[2]], fillValue: fillOf(scene),
          dimensions: ['time', 'band', 'y', 'x'], attributes: { grid_mapping: 'spatial_ref', long_name: variable, _CRS: { wkt } } }
      : { name: variable, dtype: scene.dtype, shape: [time, scene.height, scene.width], chunks: options.chunks, fillValue: fillOf(scene), dimensions: ['time', 'y', 'x'],
          attributes: { grid_mapping: 'spatial_ref', long_name: variable, _CRS: { wkt } } },
    { name: 'x', dtype: 'float64', shape: [scene.width], chunks: [scene.width], fillValue: null, dimensions: ['x'],
      attributes: geographic ? { axis: 'X', long_name: 'longitude', standard_name: 'longitude', units: 'degrees_east' } : { axis: 'X', long_name: 'x coordinate of projection', standard_name: 'projection_x_coordinate', units: 'metre' } },
    { name: 'y', dtype: 'float64', shape: [scene.height], chunks: [scene.height], fillValue: null, dimensions: ['y'],
      attributes: geographic ? { axis: 'Y', long_name: 'latitude', standard_name: 'latitude', units: 'degrees_north' } : { axis: 'Y', long_name: 'y coordinate of projection', standard_name: 'projection_y_coordinate', units: 'metre' } },
    { name: 'time', dtype: 'int64', shape: [time], chunks: [TIME_CHUNK], fillValue: null, dimensions: ['time'],
      attributes: { axis: 'T', calendar: 'standard', standard_name: 'time', units: 'microseconds since 1970-01-01 00:00:00' } },
    { name: 'spatial_ref', dtype: 'int64', shape: [], chunks: [], fillValue: null, dimensions: [],
      attributes: { crs_wkt: wkt, spatial_ref: wkt, GeoTransform: `${ox} ${dx} 0 ${oy} 0 ${dy}`, grid_mapping_name: geographic ? 'latitude_longitude' : scene.epsg === 3857 ? 'mercator' : 'transverse_mercator' } },
    // Bands numbered from 1, as GDAL and rioxarray number them.
    ...(scene.bands > 1 ? [{ name: 'band', dtype: 'int64' as const, shape: [scene.bands], chunks: [scene.bands], fillValue: null, dimensions: ['band'], attributes: { long_name: 'band number' } }] : []),
  ];
}

async function visibleTime(store: ZarrStore, variable: string): Promise<number> {
  if (store.layout.format === 2) {
    const meta = (await store.readJson('.zmetadata')) as { metadata: Record<string, { shape?: number[] }> } | undefined;
    return meta?.metadata[`${variable}/.zarray`]?.shape?.[0] ?? 0;
  }
  const group = (await store.readJson('zarr.json')) as { consolidated_metadata?: { metadata: Record<string, { shape: number[] }> } } | undefined;
  return group?.consolidated_metadata?.metadata[variable]?.shape[0] ?? 0;
}

/**
 * Appends tiles (one dataset, variable and grid) to their store: chunks, then metadata, the
 * consolidated metadata last; an unfinished append's chunks beyond the visible time are removed
 * (or their cells after it reset) by the next append, as for point series.
 */
export async function appendRasterTiles(store: ZarrStore, tiles: readonly RasterRecord[], options: RasterOptions): Promise<{ sha256: string; timeSteps: number }> {
  const scene = tiles[0]!.scene;
  const variable = tiles[0]!.variable.replace(/[^A-Za-z0-9_-]/g, '_');
  // Several bands: (time, band, y, x), one band per chunk (rioxarray's and GDAL's band axis).
  const bands = scene.bands;
  const bandIndices = bands > 1 ? Array.from({ length: bands }, (_, b) => b) : [null];
  for (const t of tiles) if (gridId(t.scene) !== gridId(scene) || t.variable !== tiles[0]!.variable) throw new StorageError(`${store.root}: tiles of one append share variable and grid`);
  const oldT = await visibleTime(store, variable);
  const [ct, cy, cx] = options.chunks;
  const size = BYTES[scene.dtype];
  const chunkCells = ct * cy * cx;

  // Restore what an unfinished append left (its chunks at or after the visible time).
  const intent = (await store.readJson(INTENT)) as { chunks: number[][] } | undefined;
  if (intent !== undefined) {
    for (const index of intent.chunks) await restore(store, scene, variable, index, oldT, ct, cy * cx);
    await store.backend.delete(store.key(INTENT));
  }

  const ordered = [...tiles].sort((a, b) => a.position.partition - b.position.partition || a.position.offset - b.position.offset);
  let newT = oldT;
  const chunks = new Map<string, { index: number[]; band: number | null; tiles: { tile: RasterRecord; t: number }[] }>();
  for (const tile of ordered) {
    const t = Math.floor((tile.timeUs - options.originUs) / options.timeStepUs);
    if (t < 0) throw new StorageError(`${store.root}: a tile at ${new Date(tile.timeUs / 1000).toISOString()} is before the store's period`);
    newT = Math.max(newT, t + 1);
    for (let by = Math.floor(tile.y / cy); by * cy < tile.y + tile.height; by++) {
      for (let bx = Math.floor(tile.x / cx); bx * cx < tile.x + tile.width; bx++) {
        for (const band of bandIndices) {
          const index = band === null ? [Math.floor(t / ct), by, bx] : [Math.floor(t / ct), band, by, bx];
          const id = index.join(',');
          let entry = chunks.get(id);
          if (entry === undefined) chunks.set(id, (entry = { index, band, tiles: [] }));
          entry.tiles.push({ tile, t });
        }
      }
    }
  }
  const sorted = [...chunks.values()].sort((a, b) => a.index.reduce((d, v, i) => d || v - b.index[i]!, 0));
  // Chunks are compressed while the intent is written; none is put before it is durable.
  const intentDurable = store.put(INTENT, Buffer.from(JSON.stringify({ chunks: sorted.map((c) => c.index) }))).then(() => failpoint('zarr.intent'));
  intentDurable.catch(() => undefined); // awaited below; a failure before the first await is not unhandled

  const plane = cy * cx * size;
  const specs = arraySpecs(scene, variable, newT, options);
  // Chunks are independent (the intent names them all; the metadata comes after): a few at once, so compression and fsyncs overlap.
  const chunkWrites = eachBounded(sorted, CHUNK_WRITES, async ({ index, band, tiles: covering }) => {
    const [bt, by, bx] = (band === null ? index : [index[0], index[2], index[3]]) as [number, number, number];
    const existing = bt * ct < oldT ? await store.getMaybe(chunkKey(store.layout, variable, index)) : undefined;
    // A new chunk the tiles cover whole needs no fill first (tiles of one append do not overlap: their windows are distinct).
    let covered = 0;
    const seen = new Set<string>();
    for (const { tile, t } of covering) {
      const window = `${t},${tile.x},${tile.y},${tile.width},${tile.height}`;
      if (seen.has(window)) continue;
      seen.add(window);
      const w = Math.min(tile.x + tile.width, (bx + 1) * cx, scene.width) - Math.max(tile.x, bx * cx);
      const h = Math.min(tile.y + tile.height, (by + 1) * cy, scene.height) - Math.max(tile.y, by * cy);
      covered += Math.max(0, w) * Math.max(0, h);
    }
    const whole = existing === undefined && covered === chunkCells;
    const buffer = existing !== undefined ? new Uint8Array(await store.layout.codec.decode(existing)) : whole ? new Uint8Array(chunkCells * size) : fillBytes(scene, chunkCells);
    if (existing !== undefined) {
      // Cells of time steps not yet visible: fill (an unfinished append may have written them).
      const fill = fillBytes(scene, cy * cx);
      for (let i = 0; i < ct; i++) if (bt * ct + i >= oldT) buffer.set(fill, i * plane);
    }
    for (const { tile, t } of covering) {
      const y0 = Math.max(tile.y, by * cy), y1 = Math.min(tile.y + tile.height, (by + 1) * cy, scene.height);
      const x0 = Math.max(tile.x, bx * cx), x1 = Math.min(tile.x + tile.width, (bx + 1) * cx, scene.width);
      const rowBytes = (x1 - x0) * size;
      for (let row = y0; row < y1; row++) {
        const to = (t % ct) * plane + ((row - by * cy) * cx + (x0 - bx * cx)) * size;
        if (band === null) {
          const from = ((row - tile.y) * tile.width + (x0 - tile.x)) * size;
          buffer.set(tile.pixels.subarray(from, from + rowBytes), to);
          continue;
        }
        // Pixel-interleaved bands: this band's samples of the row, one by one.
        const rowStart = ((row - tile.y) * tile.width + (x0 - tile.x)) * bands * size + band * size;
        for (let x = 0; x < x1 - x0; x++) {
          const from = rowStart + x * bands * size;
          for (let k = 0; k < size; k++) buffer[to + x * size + k] = tile.pixels[from + k]!;
        }
      }
    }
    const compressed = await store.layout.codec.encode(buffer, size);
    await intentDurable;
    await store.put(chunkKey(store.layout, variable, index), compressed);
    failpoint('zarr.chunk');
  });

  // The coordinates beside the chunks: their cells past the visible shape are not seen before the metadata either.
  const [, dx, , , , dy] = scene.geotransform;
  const [ox, , , oy] = scene.geotransform;
  const coords = async (spec: ArraySpec, index: number[], values: number[]) => {
    const compressed = await store.layout.codec.encode(encodeCells(spec, values), itemSizeOf(spec.dtype));
    await intentDurable;
    await store.put(chunkKey(store.layout, spec.name, index), compressed);
  };
  const coordWrites = (async () => {
    if (oldT === 0) {
      await coords(specs[1]!, [0], Array.from({ length: scene.width }, (_, i) => ox + (i + 0.5) * dx));
      await coords(specs[2]!, [0], Array.from({ length: scene.height }, (_, j) => oy + (j + 0.5) * dy));
      await coords(specs[4]!, [], [0]);
      if (scene.bands > 1) await coords(specs[5]!, [0], Array.from({ length: scene.bands }, (_, b) => b + 1));
    }
    for (let c = Math.floor(oldT / TIME_CHUNK); c * TIME_CHUNK < newT && newT > oldT; c++) {
      await coords(specs[3]!, [c], Array.from({ length: TIME_CHUNK }, (_, i) => (c * TIME_CHUNK + i < newT ? options.originUs + (c * TIME_CHUNK + i) * options.timeStepUs : 0)));
    }
  })();
  const settled = await Promise.allSettled([intentDurable, chunkWrites, coordWrites]);
  for (const s of settled) if (s.status === 'rejected') throw s.reason;
  const sha256 = await store.commitMetadata(specs, { Conventions: 'CF-1.8' });
  failpoint('zarr.committed');
  await store.backend.delete(store.key(INTENT));
  return { sha256, timeSteps: newT };
}

async function restore(store: ZarrStore, scene: RasterScene, variable: string, index: number[], visible: number, ct: number, planeCells: number): Promise<void> {
  const key = chunkKey(store.layout, variable, index);
  if (index[0]! * ct >= visible) return store.backend.delete(store.key(key));
  const bytes = await store.getMaybe(key);
  if (bytes === undefined || (index[0]! + 1) * ct <= visible) return;
  // Straddles the visible end: the time steps after it go back to fill, as a crash-free run has them.
  const buffer = new Uint8Array(await store.layout.codec.decode(bytes));
  const fill = fillBytes(scene, planeCells);
  for (let i = 0; i < ct; i++) if (index[0]! * ct + i >= visible) buffer.set(fill, i * fill.byteLength);
  await store.put(key, await store.layout.codec.encode(buffer, BYTES[scene.dtype]));
}
