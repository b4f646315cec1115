import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { uncompress as lz4Uncompress } from 'lz4-napi';
import { EncodeError } from '../../core/errors.js';

const require = createRequire(import.meta.url);
const zstd = require('@mongodb-js/zstd/bindings') as { compress(data: Buffer, level: number): Promise<Buffer>; decompress(data: Buffer): Promise<Buffer> };
const inflate = promisify(zlib.inflate);

/**
 * Blosc 1 frames (c-blosc's README_HEADER.rst), the container numcodecs' `Blosc` and the Zarr v3
 * `blosc` codec read: a 16-byte header (format version 2, codec version, flags, typesize,
 * uncompressed size, block size, frame size), the offsets of the blocks, then each block as
 * an int32 size and its compressed bytes (stored raw when compression does not pay).
 *
 * Written here: byte shuffle (for typesize > 1) and zstd inside, blocks not split into
 * per-byte streams (flag 0x10), blocks compressed concurrently on libuv's pool. Read: those,
 * and what numcodecs writes by default (lz4, zlib, zstd; split or not; byte shuffle).
 */
const HEADER = 16;
const VERSION_FORMAT = 2;
const FLAG_SHUFFLE = 0x01;
const FLAG_MEMCPYED = 0x02;
const FLAG_BITSHUFFLE = 0x04;
const FLAG_DONT_SPLIT = 0x10;
/** Codec formats in the flags' top 3 bits. */
const FORMAT = { blosclz: 0, lz4: 1, snappy: 2, zlib: 3, zstd: 4 } as const;
/** c-blosc's split rule: streams per byte of the type when not told otherwise. */
const MAX_SPLITS = 16;
const MIN_BUFFERSIZE = 128;
/** Our block size: c-blosc's own choice for zstd at mid levels is of this order. */
const BLOCK_BYTES = 256 << 10;

/** c-blosc's mapping of its 0–9 level to zstd's. */
const zstdLevelOf = (clevel: number) => (clevel < 9 ? clevel * 2 - 1 : 22);

export function shuffle(src: Uint8Array, typesize: number): Uint8Array {
  const out = new Uint8Array(src.length);
  const n = Math.floor(src.length / typesize);
  for (let j = 0; j < typesize; j++) for (let i = 0; i < n; i++) out[j * n + i] = src[i * typesize + j]!;
  out.set(src.subarray(n * typesize), n * typesize);
  return out;
}

export function unshuffle(src: Uint8Array, typesize: number): Uint8Array {
  const out = new Uint8Array(src.length);
  const n = Math.floor(src.length / typesize);
  for (let j = 0; j < typesize; j++) for (let i = 0; i < n; i++) out[i * typesize + j] = src[j * n + i]!;
  out.set(src.subarray(n * typesize), n * typesize);
  return out;
}

const buf = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** A Blosc frame of `raw` (elements of `typesize` bytes), zstd inside at blosc level `clevel` (0: stored). */
export async function bloscEncode(raw: Uint8Array, typesize: number, clevel: number): Promise<Uint8Array> {
  const ts = Math.max(1, Math.min(255, typesize));
  const nbytes = raw.byteLength;
  const doShuffle = ts > 1;
  const blocksize = nbytes === 0 ? 0 : Math.min(nbytes, Math.max(ts, BLOCK_BYTES - (BLOCK_BYTES % ts)));
  const nblocks = blocksize === 0 ? 0 : Math.ceil(nbytes / blocksize);
  const header = (flags: number, cbytes: number) => {
    const h = Buffer.alloc(HEADER);
    h[0] = VERSION_FORMAT;
    h[1] = 1; // the zstd codec's format version
    h[2] = flags;
    h[3] = ts;
    h.writeUInt32LE(nbytes, 4);
    h.writeUInt32LE(blocksize, 8);
    h.writeUInt32LE(cbytes, 12);
    return h;
  };
  const memcpyed = () => {
    const out = new Uint8Array(HEADER + nbytes);
    out.set(header(FLAG_MEMCPYED | FLAG_DONT_SPLIT | (FORMAT.zstd << 5), HEADER + nbytes));
    out.set(raw, HEADER);
    return out;
  };
  if (clevel === 0 || nblocks === 0) return memcpyed();
  const blocks = await Promise.all(
    Array.from({ length: nblocks }, async (_, b) => {
      const block = raw.subarray(b * blocksize, Math.min(nbytes, (b + 1) * blocksize));
      const prepared = doShuffle ? shuffle(block, ts) : block;
      const packed = await zstd.compress(buf(prepared), zstdLevelOf(clevel));
      // Stored as it is (size = the block's) when compression does not pay: what the decoders expect.
      return packed.byteLength < prepared.byteLength ? packed : prepared;
    }),
  );
  const cbytes = HEADER + 4 * nblocks + blocks.reduce((n, b) => n + 4 + b.byteLength, 0);
  if (cbytes >= HEADER + nbytes) return memcpyed();
  const out = new Uint8Array(cbytes);
  const view = new DataView(out.buffer);
  out.set(header((doShuffle ? FLAG_SHUFFLE : 0) | FLAG_DONT_SPLIT | (FORMAT.zstd << 5), cbytes));
  let at = HEADER + 4 * nblocks;
  blocks.forEach((b, i) => {
    view.setInt32(HEADER + 4 * i, at, true);
    view.setInt32(at, b.byteLength, true);
    out.set(b, at + 4);
    at += 4 + b.byteLength;
  });
  return out;
}

/** The bytes of a Blosc 1 frame. */
export async function bloscDecode(frame: Uint8Array): Promise<Uint8Array> {
  const fail = (why: string): never => {
    throw new EncodeError(`blosc frame: ${why}`, { context: { stage: 'decode', format: 'zarr' } });
  };
  if (frame.byteLength < HEADER) fail(`${frame.byteLength} bytes, shorter than its header`);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const flags = frame[2]!;
  const typesize = frame[3]!;
  const nbytes = view.getUint32(4, true);
  const blocksize = view.getUint32(8, true);
  const cbytes = view.getUint32(12, true);
  if (cbytes > frame.byteLength) fail(`it says ${cbytes} bytes, ${frame.byteLength} are there`);
  if (flags & FLAG_MEMCPYED) {
    if (HEADER + nbytes > frame.byteLength) fail('stored bytes cut short');
    return new Uint8Array(frame.subarray(HEADER, HEADER + nbytes));
  }
  if (flags & FLAG_BITSHUFFLE) fail('bit shuffle is not read here (byte shuffle is)');
  if (nbytes === 0) return new Uint8Array(0);
  if (blocksize === 0) fail('block size 0');
  const format = flags >> 5;
  const nblocks = Math.ceil(nbytes / blocksize);
  const out = new Uint8Array(nbytes);
  const decompress = async (src: Uint8Array, size: number): Promise<Uint8Array> => {
    if (format === FORMAT.zstd) return zstd.decompress(buf(src));
    if (format === FORMAT.zlib) return inflate(buf(src));
    if (format === FORMAT.lz4) {
      // A raw LZ4 block: lz4-napi wants it after its 4-byte size.
      const sized = Buffer.alloc(4 + src.byteLength);
      sized.writeUInt32LE(size, 0);
      sized.set(src, 4);
      return lz4Uncompress(sized);
    }
    return fail(`codec ${format === FORMAT.blosclz ? 'blosclz' : format === FORMAT.snappy ? 'snappy' : String(format)} is not read here (zstd, lz4, zlib are)`);
  };
  await Promise.all(
    Array.from({ length: nblocks }, async (_, b) => {
      const bsize = Math.min(blocksize, nbytes - b * blocksize);
      const leftover = bsize < blocksize;
      const nsplits = !(flags & FLAG_DONT_SPLIT) && typesize <= MAX_SPLITS && blocksize / typesize >= MIN_BUFFERSIZE && !leftover ? typesize : 1;
      const neblock = Math.floor(bsize / nsplits);
      let at = view.getInt32(HEADER + 4 * b, true);
      const block = new Uint8Array(bsize);
      for (let s = 0; s < nsplits; s++) {
        if (at + 4 > frame.byteLength) fail(`block ${b} past the end`);
        const size = view.getInt32(at, true);
        const src = frame.subarray(at + 4, at + 4 + size);
        if (src.byteLength !== size) fail(`block ${b} cut short`);
        const part = size === neblock ? src : await decompress(src, neblock);
        if (part.byteLength !== neblock) fail(`block ${b} gives ${part.byteLength} bytes, not ${neblock}`);
        block.set(part, s * neblock);
        at += 4 + size;
      }
      out.set(flags & FLAG_SHUFFLE && typesize > 1 ? unshuffle(block, typesize) : block, b * blocksize);
    }),
  );
  return out;
}
