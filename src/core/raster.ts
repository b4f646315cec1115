/**
 * The raster record contract: one tile of a scene, as decoded from its envelope
 * (src/records/raster.ts; published in src/records/schemas/raster-tile.md and
 * raster-tile.schema.json). Points and features are in record.ts.
 */
import type { SourcePosition } from './record.js';

export const RASTER_DTYPES = ['uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32', 'float32', 'float64'] as const;
export type RasterDtype = (typeof RASTER_DTYPES)[number];

/** The grid of the whole scene a tile belongs to: the same in every tile of the scene. */
export interface RasterScene {
  /** Unique within (dataset, variable): the scene's tiles share it. */
  sceneId: string;
  /** Full scene size in pixels. */
  width: number;
  height: number;
  dtype: RasterDtype;
  /** Samples per pixel, pixel-interleaved (1 unless the producer says otherwise). */
  bands: number;
  /** GDAL order, north-up: [originX, pixelWidth, 0, originY, 0, -pixelHeight], in the CRS's units. */
  geotransform: [number, number, number, number, number, number];
  /** An EPSG code, or WKT (1 or 2) whose root names an EPSG code. */
  crs: number | string;
  /** EPSG code of `crs` (resolved from WKT when given as WKT). */
  epsg: number;
  /** A pixel value meaning "no data" (NaN allowed for floats), or null. */
  nodata: number | null;
}

/** One tile: a window of the scene with its pixels. */
export interface RasterRecord {
  kind: 'raster';
  position: SourcePosition;
  /** Size of the original payload in bytes (the envelope, compressed pixels included). */
  size: number;
  /** The producer's identifier of the tile (header `id`), or null. */
  id: string | null;
  dataset: string;
  variable: string;
  /** Observation time of the scene, microseconds since the Unix epoch (UTC). */
  timeUs: number;
  scene: RasterScene;
  /** The tile's top-left pixel in the scene, and its size in pixels. */
  x: number;
  y: number;
  width: number;
  height: number;
  /** Decompressed pixels: little-endian, row-major, north-up, bands interleaved; width × height × bands × dtype bytes. */
  pixels: Uint8Array;
  /** [minX, minY, maxX, maxY] of the tile in the scene's CRS. */
  bboxNative: [number, number, number, number];
  /** The same in WGS 84 lon/lat (what classify's `bbox` and the catalog's bbox use). */
  bbox: [number, number, number, number];
  key?: string | null;
}
