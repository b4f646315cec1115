import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { compress as lz4Compress, uncompress as lz4Uncompress } from 'lz4-napi';
import { ConfigError } from '../../core/errors.js';
import { bloscDecode, bloscEncode } from './blosc.js';

const require = createRequire(import.meta.url);
/** The native binding honours the level (the package's main export always writes level 3); both run on libuv's pool. */
const zstd = require('@mongodb-js/zstd/bindings') as { compress(data: Buffer, level: number): Promise<Buffer>; decompress(data: Buffer): Promise<Buffer> };
const gzip = promisify(zlib.gzip);
const gunzip = promisify(zlib.gunzip);

export const ZARR_COMPRESSIONS = ['zstd', 'gzip', 'lz4', 'blosc', 'none'] as const;
export type ZarrCompression = (typeof ZARR_COMPRESSIONS)[number];
export type ZarrFormat = 2 | 3;

/**
 * A chunk's compressor, as both metadata versions name it, and its native encode/decode.
 * Chunk bytes are little-endian C order before compression (v3: the `bytes` codec).
 */
export interface ChunkCodec {
  readonly name: ZarrCompression;
  /** The level written (`null`: the codec has none). */
  readonly level: number | null;
  /** v2 `.zarray` `compressor` (numcodecs config), null for none. */
  readonly v2: Record<string, unknown> | null;
  /** v3 codecs after `bytes`, for an array of `itemSize`-byte elements (blosc's shuffle needs it). */
  v3(itemSize: number): Record<string, unknown>[];
  /** `itemSize`: bytes per element (blosc shuffles by it; the others ignore it). */
  encode(raw: Uint8Array, itemSize: number): Promise<Uint8Array>;
  decode(bytes: Uint8Array): Promise<Uint8Array>;
}

const asBuffer = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** Levels each codec accepts (zstd 1–22, gzip and blosc 0–9); lz4 and none have none. */
export function checkLevel(compression: ZarrCompression, level: number): string | null {
  if (compression === 'zstd' && (level < 1 || level > 22)) return 'zstd levels are 1–22';
  if (compression === 'gzip' && (level < 0 || level > 9)) return 'gzip levels are 0–9';
  if (compression === 'blosc' && (level < 0 || level > 9)) return 'blosc levels are 0–9';
  return null;
}

export function chunkCodec(compression: ZarrCompression, level: number, format: ZarrFormat): ChunkCodec {
  const bad = checkLevel(compression, level);
  if (bad !== null) throw new ConfigError(`compression_level ${level}: ${bad}`);
  switch (compression) {
    case 'zstd':
      return {
        name: 'zstd', level,
        v2: { id: 'zstd', level },
        v3: () => [{ name: 'zstd', configuration: { level, checksum: false } }],
        encode: async (raw) => zstd.compress(asBuffer(raw), level),
        decode: async (bytes) => zstd.decompress(asBuffer(bytes)),
      };
    case 'gzip':
      return {
        name: 'gzip', level,
        v2: { id: 'gzip', level },
        v3: () => [{ name: 'gzip', configuration: { level } }],
        // node's gzip header has mtime 0 and a fixed OS byte: same input, same bytes.
        encode: async (raw) => gzip(asBuffer(raw), { level }),
        decode: async (bytes) => gunzip(asBuffer(bytes)),
      };
    case 'lz4':
      if (format === 3) throw new ConfigError('compression lz4 has no Zarr v3 codec (numcodecs.lz4 is not in the spec): use zstd or gzip with zarr_format: 3, or zarr_format: 2');
      return {
        // numcodecs' LZ4 is an LZ4 block after a 4-byte little-endian uncompressed size: lz4-napi's `compress` is exactly that (lz4_flex compress_prepend_size).
        name: 'lz4', level: null,
        v2: { id: 'lz4', acceleration: 1 },
        v3: () => [],
        encode: async (raw) => lz4Compress(asBuffer(raw)),
        decode: async (bytes) => lz4Uncompress(asBuffer(bytes)),
      };
    case 'blosc':
      // Byte shuffle and zstd inside (numcodecs reads the frame's own flags and typesize).
      return {
        name: 'blosc', level,
        v2: { id: 'blosc', cname: 'zstd', clevel: level, shuffle: 1, blocksize: 0 },
        v3: (itemSize) => [{ name: 'blosc', configuration: { cname: 'zstd', clevel: level, shuffle: itemSize > 1 ? 'shuffle' : 'noshuffle', typesize: itemSize, blocksize: 0 } }],
        encode: (raw, itemSize) => bloscEncode(raw, itemSize, level),
        decode: bloscDecode,
      };
    case 'none':
      return { name: 'none', level: null, v2: null, v3: () => [], encode: async (raw) => raw, decode: async (bytes) => bytes };
  }
}
