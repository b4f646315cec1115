/**
 * The raster tile envelope (spec: schemas/raster-tile.md): one Kafka message value or one
 * payload is one tile of a scene.
 *
 *   0–3 "EMRT" · 4 version 1 · 5–7 zero · 8–11 H (uint32 LE) · 12…12+H JSON header (UTF-8) · pixels
 *
 * `decodeRasterTile` never throws on bad input: every failure is a dead letter with a stable
 * reason and the payload's bytes as they came. Decompression is bounded by the declared size.
 */
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { DeadLetter, DeadLetterReason, SourcePosition } from '../core/record.js';
import type { RasterDtype, RasterRecord } from '../core/raster.js';
import { lonLatBounds, resolveCrs, type ResolvedCrs } from './crs.js';
import { HeaderInvalid, validateHeader } from './raster-header.js';
import { parseTimeUs } from './time.js';

const require = createRequire(import.meta.url);
/** The native binding: its compress honours the level; both run on libuv's pool. */
const zstd = require('@mongodb-js/zstd/bindings') as {
  compress(data: Buffer, level: number): Promise<Buffer>;
  decompress(data: Buffer): Promise<Buffer>;
};
const inflate = promisify(zlib.inflate);
const deflate = promisify(zlib.deflate);

export const RASTER_MAGIC = 'EMRT';
export const RASTER_VERSION = 1;
export const RASTER_PREFIX_BYTES = 12;
/** A header longer than this is refused (a WKT CRS is a few KiB). */
export const MAX_HEADER_BYTES = 64 * 1024;
/** Default bound of a tile's decompressed pixels (`max_tile_bytes`): 256 MiB. */
export const DEFAULT_MAX_TILE_BYTES = 256 * 1024 * 1024;

export const DTYPE_BYTES: Record<RasterDtype, 1 | 2 | 4 | 8> = {
  uint8: 1, int8: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, float32: 4, float64: 8,
};
const INTEGER_RANGE: Partial<Record<RasterDtype, [number, number]>> = {
  uint8: [0, 255], int8: [-128, 127], uint16: [0, 65535], int16: [-32768, 32767],
  uint32: [0, 4294967295], int32: [-2147483648, 2147483647],
};

export type RasterCompression = 'none' | 'zstd' | 'deflate';

/** The JSON header, as producers write it (snake_case keys; raster-tile.schema.json). */
export interface RasterTileHeader {
  dataset: string;
  variable: string;
  time: string;
  crs: number | string;
  scene_id: string;
  scene_width: number;
  scene_height: number;
  geotransform?: [number, number, number, number, number, number];
  bbox?: [number, number, number, number];
  x: number;
  y: number;
  width: number;
  height: number;
  dtype: RasterDtype;
  nodata?: number | 'nan' | null;
  bands?: number;
  compression?: RasterCompression;
  id?: string | null;
}


export type RasterDecodeResult = { record: RasterRecord } | { deadLetter: DeadLetter };

export interface RasterDecodeOptions {
  /** Refuse tiles whose decompressed pixels exceed this (`too_large`). */
  maxTileBytes?: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * One envelope from a header and its raw pixels (little-endian, row-major, bands interleaved).
 * The header's `compression` key is set from `compression` (default: the header's, else none).
 * Async because zstd and deflate run on libuv's pool.
 */
export async function encodeRasterTile(header: RasterTileHeader, pixels: Uint8Array, compression?: RasterCompression, level?: number): Promise<Uint8Array> {
  const mode = compression ?? header.compression ?? 'none';
  const buf = Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength);
  const body = mode === 'zstd' ? withContentSize(await zstd.compress(buf, level ?? 3), pixels.length) : mode === 'deflate' ? await deflate(buf, { level: level ?? 6 }) : pixels;
  const json = Buffer.from(JSON.stringify({ ...header, compression: mode }), 'utf8');
  const out = new Uint8Array(RASTER_PREFIX_BYTES + json.length + body.length);
  out.set(Buffer.from(RASTER_MAGIC, 'ascii'), 0);
  out[4] = RASTER_VERSION;
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, RASTER_PREFIX_BYTES);
  out.set(body, RASTER_PREFIX_BYTES + json.length);
  return out;
}

/**
 * The binding compresses as a stream and leaves the frame's content size out; the decoder needs
 * it (its bound), so it is put in: Frame_Content_Size_flag 3 with 8 bytes after the window
 * descriptor. The frame header is not covered by the content checksum, so the frame stays valid.
 */
function withContentSize(frame: Buffer, size: number): Uint8Array {
  const fhd = frame[4]!;
  if (fhd >> 6 !== 0 || (fhd & 0x20) !== 0 || (fhd & 3) !== 0) return frame;
  const out = new Uint8Array(frame.length + 8);
  out.set(frame.subarray(0, 6), 0);
  out[4] = fhd | 0xc0;
  new DataView(out.buffer).setBigUint64(6, BigInt(size), true);
  out.set(frame.subarray(6), 14);
  return out;
}

/** True when the payload starts with the envelope's magic (what a mixed reader can test cheaply). */
export function isRasterEnvelope(payload: Uint8Array): boolean {
  return payload.length >= 4 && payload[0] === 0x45 && payload[1] === 0x4d && payload[2] === 0x52 && payload[3] === 0x54;
}

/**
 * Decodes and validates one envelope. Async: zstd and deflate decompress on libuv's pool.
 * Never rejects on bad input; a bad tile resolves to a dead letter (reason codes in record.ts).
 */
export async function decodeRasterTile(payload: Uint8Array, position: SourcePosition, options: RasterDecodeOptions = {}): Promise<RasterDecodeResult> {
  const fail = (reason: DeadLetterReason, message: string): RasterDecodeResult => ({ deadLetter: { reason, message, position, payload } });
  const maxTileBytes = options.maxTileBytes ?? DEFAULT_MAX_TILE_BYTES;
  if (payload.length < RASTER_PREFIX_BYTES) return fail('bad_envelope', `${payload.length} bytes: shorter than the 12-byte envelope prefix`);
  if (!isRasterEnvelope(payload)) return fail('bad_envelope', 'does not start with "EMRT"');
  if (payload[4] !== RASTER_VERSION) return fail('bad_envelope', `envelope version ${payload[4]}, expected ${RASTER_VERSION}`);
  if (payload[5] !== 0 || payload[6] !== 0 || payload[7] !== 0) return fail('bad_envelope', 'bytes 5–7 must be zero');
  const headerLength = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(8, true);
  if (headerLength > MAX_HEADER_BYTES) return fail('bad_envelope', `header length ${headerLength} is over ${MAX_HEADER_BYTES} bytes`);
  if (RASTER_PREFIX_BYTES + headerLength > payload.length) {
    return fail('bad_envelope', `header length ${headerLength} runs past the payload's ${payload.length} bytes`);
  }
  let header: unknown;
  try {
    header = JSON.parse(utf8.decode(payload.subarray(RASTER_PREFIX_BYTES, RASTER_PREFIX_BYTES + headerLength)));
  } catch (error) {
    return fail('bad_envelope', `header is not UTF-8 JSON: ${(error as Error).message}`);
  }
  const invalid = validateHeader(header);
  if (invalid) return fail(invalid.reason, invalid.message);
  const h = header as RasterTileHeader;

  const timeUs = parseTimeUs(h.time);
  if (timeUs === undefined) return fail('bad_time', `time: ${h.time} is not an RFC 3339 date-time within ±2^53 µs`);
  let crs: ResolvedCrs;
  try {
    crs = resolveCrs(h.crs);
  } catch (error) {
    return fail('unknown_crs', `crs: ${(error as Error).message}`);
  }
  const gt = h.geotransform ?? fromBbox(h.bbox!, h.scene_width, h.scene_height);
  const gtProblem = geotransformProblem(gt);
  if (gtProblem) return fail('bad_geotransform', gtProblem);
  if (h.x + h.width > h.scene_width || h.y + h.height > h.scene_height) {
    return fail('tile_outside_scene', `tile ${h.width}×${h.height} at (${h.x}, ${h.y}) does not fit the ${h.scene_width}×${h.scene_height} scene`);
  }
  const nodata = h.nodata === 'nan' ? NaN : (h.nodata ?? null);
  const nodataProblem = nodataFits(nodata, h.dtype);
  if (nodataProblem) return fail('bad_nodata', nodataProblem);

  const bands = h.bands ?? 1;
  const expected = h.width * h.height * bands * DTYPE_BYTES[h.dtype];
  if (expected > maxTileBytes) return fail('too_large', `tile pixels are ${expected} bytes, over max_record_bytes ${maxTileBytes}`);
  const body = payload.subarray(RASTER_PREFIX_BYTES + headerLength);
  const pixels = await decompress(body, h.compression ?? 'none', expected);
  if (pixels instanceof HeaderInvalid) return fail(pixels.reason, pixels.message);

  const pw = gt[1], ph = -gt[5];
  const bboxNative: [number, number, number, number] = [
    gt[0] + h.x * pw, gt[3] - (h.y + h.height) * ph, gt[0] + (h.x + h.width) * pw, gt[3] - h.y * ph,
  ];
  const bbox = lonLatBounds(crs, bboxNative);
  if (!bbox.every(Number.isFinite) || bbox[1] < -90 - 1e-9 || bbox[3] > 90 + 1e-9) {
    return fail('bad_geotransform', `the tile's bounds [${bboxNative.join(', ')}] are not on the earth in EPSG:${crs.epsg}`);
  }
  return {
    record: {
      kind: 'raster',
      position,
      size: payload.length,
      id: h.id ?? null,
      dataset: h.dataset,
      variable: h.variable,
      timeUs,
      scene: {
        sceneId: h.scene_id,
        width: h.scene_width,
        height: h.scene_height,
        dtype: h.dtype,
        bands,
        geotransform: gt,
        crs: h.crs,
        epsg: crs.epsg,
        nodata,
      },
      x: h.x,
      y: h.y,
      width: h.width,
      height: h.height,
      pixels,
      bboxNative,
      bbox,
    },
  };
}

function fromBbox(b: [number, number, number, number], width: number, height: number): [number, number, number, number, number, number] {
  return [b[0], (b[2] - b[0]) / width, 0, b[3], 0, -(b[3] - b[1]) / height];
}

function geotransformProblem(gt: readonly number[]): string | undefined {
  if (!gt.every(Number.isFinite)) return 'geotransform: every term must be finite';
  if (gt[2] !== 0 || gt[4] !== 0) return 'geotransform: rotated grids are not supported (terms 2 and 4 must be 0)';
  if (!(gt[1]! > 0) || !(gt[5]! < 0)) return 'geotransform: expected north-up (pixel width > 0, pixel height < 0; bbox min < max)';
  return undefined;
}

function nodataFits(nodata: number | null, dtype: RasterDtype): string | undefined {
  if (nodata === null) return undefined;
  const range = INTEGER_RANGE[dtype];
  if (range) {
    if (!Number.isInteger(nodata) || nodata < range[0] || nodata > range[1]) return `nodata ${nodata} is not a ${dtype} value`;
  } else if (dtype === 'float32' && Number.isFinite(nodata) && Math.fround(nodata) !== nodata) {
    return `nodata ${nodata} is not exactly a float32 value`;
  }
  return undefined;
}

/** The pixels, decompressed to exactly `expected` bytes, or why not. */
async function decompress(body: Uint8Array, mode: RasterCompression, expected: number): Promise<Uint8Array | HeaderInvalid> {
  const wrongSize = (n: number) => new HeaderInvalid('wrong_pixel_size', `pixels are ${n} bytes, expected ${expected} (width × height × bands × dtype bytes)`);
  if (mode === 'none') return body.length === expected ? body : wrongSize(body.length);
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (mode === 'deflate') {
    let out: Buffer;
    try {
      // maxOutputLength stops a zip bomb at the declared size instead of inflating it whole.
      out = await inflate(buf, { maxOutputLength: Math.max(expected, 1) });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ERR_BUFFER_TOO_LARGE') return new HeaderInvalid('too_large', `deflate stream inflates past the declared ${expected} bytes`);
      return new HeaderInvalid('bad_compression', `deflate: ${(error as Error).message}`);
    }
    return out.length === expected ? new Uint8Array(out.buffer, out.byteOffset, out.length) : wrongSize(out.length);
  }
  const frame = zstdFrameProblem(body, expected);
  if (frame) return frame;
  let out: Buffer;
  try {
    out = await zstd.decompress(buf);
  } catch (error) {
    return new HeaderInvalid('bad_compression', `zstd: ${(error as Error).message}`);
  }
  return out.length === expected ? new Uint8Array(out.buffer, out.byteOffset, out.length) : wrongSize(out.length);
}

/**
 * The zstd decoder we have takes no output limit, so the frame is checked first: exactly one
 * frame filling the body, declaring its content size equal to the expected size (libzstd stops
 * with an error when the content outgrows what its header declares), valid block structure.
 */
function zstdFrameProblem(b: Uint8Array, expected: number): HeaderInvalid | undefined {
  const bad = (message: string) => new HeaderInvalid('bad_compression', `zstd: ${message}`);
  if (b.length < 6 || b[0] !== 0x28 || b[1] !== 0xb5 || b[2] !== 0x2f || b[3] !== 0xfd) return bad('not a zstd frame (magic 28 B5 2F FD)');
  const fhd = b[4]!;
  const fcsFlag = fhd >> 6, single = (fhd >> 5) & 1, checksum = (fhd >> 2) & 1, dictFlag = fhd & 3;
  if (fhd & 0x08) return bad('reserved frame header bit set');
  if (dictFlag !== 0) return bad('dictionaries are not supported');
  const fcsBytes = [single ? 1 : 0, 2, 4, 8][fcsFlag]!;
  if (fcsBytes === 0) return bad('the frame must declare its content size');
  let at = 5 + (single ? 0 : 1);
  if (at + fcsBytes > b.length) return bad('truncated frame header');
  let size = 0;
  for (let i = fcsBytes - 1; i >= 0; i--) size = size * 256 + b[at + i]!;
  if (fcsBytes === 2) size += 256;
  at += fcsBytes;
  if (size !== expected) {
    return size > expected
      ? new HeaderInvalid('too_large', `zstd frame declares ${size} bytes, over the declared ${expected}`)
      : new HeaderInvalid('wrong_pixel_size', `zstd frame declares ${size} bytes, expected ${expected}`);
  }
  for (;;) {
    if (at + 3 > b.length) return bad('truncated block header');
    const bh = b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16);
    at += 3;
    const last = bh & 1, type = (bh >> 1) & 3, blockSize = bh >>> 3;
    if (type === 3) return bad('reserved block type');
    if (blockSize > 128 * 1024) return bad('block larger than 128 KiB');
    at += type === 1 ? 1 : blockSize;
    if (at > b.length) return bad('truncated block');
    if (last) break;
  }
  if (checksum) at += 4;
  if (at !== b.length) return bad(at > b.length ? 'truncated checksum' : `${b.length - at} bytes after the frame`);
  return undefined;
}
