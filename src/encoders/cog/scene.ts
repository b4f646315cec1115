import { ConfigError } from '../../core/errors.js';
import { crsGeoKeys, type GeoKeys } from './geokeys.js';

export const DTYPES = ['uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32', 'float32', 'float64'] as const;
export type Dtype = (typeof DTYPES)[number];

export type PixelArray = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array;

export interface DtypeInfo {
  bytes: 1 | 2 | 4 | 8;
  /** TIFF SampleFormat: 1 unsigned integer, 2 signed integer, 3 IEEE float. */
  sampleFormat: 1 | 2 | 3;
  float: boolean;
  min: number;
  max: number;
  array: new (length: number) => PixelArray;
  is(a: unknown): a is PixelArray;
}

const info = (bytes: DtypeInfo['bytes'], sampleFormat: DtypeInfo['sampleFormat'], min: number, max: number, array: DtypeInfo['array']): DtypeInfo => ({
  bytes,
  sampleFormat,
  float: sampleFormat === 3,
  min,
  max,
  array,
  is: (a): a is PixelArray => a instanceof array,
});

export const DTYPE: Record<Dtype, DtypeInfo> = {
  uint8: info(1, 1, 0, 255, Uint8Array),
  int8: info(1, 2, -128, 127, Int8Array),
  uint16: info(2, 1, 0, 65535, Uint16Array),
  int16: info(2, 2, -32768, 32767, Int16Array),
  uint32: info(4, 1, 0, 4294967295, Uint32Array),
  int32: info(4, 2, -2147483648, 2147483647, Int32Array),
  float32: info(4, 3, -3.4028234663852886e38, 3.4028234663852886e38, Float32Array),
  float64: info(8, 3, -Number.MAX_VALUE, Number.MAX_VALUE, Float64Array),
};

/** What the writer needs to know about a raster before its first block. */
export interface CogScene {
  width: number;
  height: number;
  dtype: Dtype;
  /** Samples per pixel, pixel-interleaved in blocks (default 1). */
  bands?: number;
  /** GDAL order: [originX, pixelWidth, 0, originY, 0, -pixelHeight] (north-up only). */
  geotransform: readonly [number, number, number, number, number, number];
  /** An EPSG code, or WKT (1 or 2) whose outer identifier names an EPSG code. */
  crs: number | string;
  /** A pixel value meaning "no data" (NaN allowed for floats), or null/undefined for none. */
  nodata?: number | null;
}

export interface ResolvedScene {
  width: number;
  height: number;
  dtype: Dtype;
  info: DtypeInfo;
  bands: number;
  geotransform: readonly number[];
  geoKeys: GeoKeys;
  nodata: number | null;
  /** The nodata value as stored in the pixels' type (float32 rounds), null without nodata. */
  nodataStored: number | null;
}

const MAX_SIDE = 2 ** 31 - 1;

export function resolveScene(scene: CogScene): ResolvedScene {
  const bad = (path: string, message: string) =>
    new ConfigError(`COG scene: ${path}: ${message}`, [{ file: 'cog scene', path, message }]);
  for (const side of ['width', 'height'] as const) {
    const v = scene[side];
    if (!Number.isInteger(v) || v < 1 || v > MAX_SIDE) throw bad(side, `expected a positive integer, got ${v}`);
  }
  if (!(DTYPES as readonly string[]).includes(scene.dtype)) throw bad('dtype', `expected one of ${DTYPES.join(', ')}, got ${String(scene.dtype)}`);
  const dt = DTYPE[scene.dtype];
  const bands = scene.bands ?? 1;
  if (!Number.isInteger(bands) || bands < 1 || bands > 64) throw bad('bands', `expected 1–64, got ${bands}`);
  const gt = scene.geotransform;
  if (!Array.isArray(gt) || gt.length !== 6 || !gt.every((v) => Number.isFinite(v))) throw bad('geotransform', 'expected 6 finite numbers');
  if (gt[2] !== 0 || gt[4] !== 0 || !(gt[1] > 0) || !(gt[5] < 0)) {
    throw bad('geotransform', 'only north-up rasters are supported (gt[2] = gt[4] = 0, gt[1] > 0, gt[5] < 0)');
  }
  let geoKeys: GeoKeys;
  try {
    geoKeys = crsGeoKeys(scene.crs);
  } catch (error) {
    throw bad('crs', error instanceof Error ? error.message : String(error));
  }
  const nodata = scene.nodata ?? null;
  let nodataStored: number | null = null;
  if (nodata !== null) {
    if (typeof nodata !== 'number') throw bad('nodata', 'expected a number, NaN or null');
    if (dt.float) {
      if (Number.isFinite(nodata) && (nodata < dt.min || nodata > dt.max)) throw bad('nodata', `${nodata} is outside ${scene.dtype}`);
      nodataStored = scene.dtype === 'float32' ? Math.fround(nodata) : nodata;
    } else {
      if (!Number.isInteger(nodata) || nodata < dt.min || nodata > dt.max) throw bad('nodata', `${nodata} is not a ${scene.dtype} value`);
      nodataStored = nodata;
    }
  }
  return { width: scene.width, height: scene.height, dtype: scene.dtype, info: dt, bands, geotransform: [...gt], geoKeys, nodata, nodataStored };
}

/** GDAL_NODATA's text, as GDAL writes and reads it ("nan", "inf", "-9999", "0.1"). */
export function nodataText(nodata: number): string {
  if (Number.isNaN(nodata)) return 'nan';
  if (nodata === Infinity) return 'inf';
  if (nodata === -Infinity) return '-inf';
  return String(nodata);
}
