import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { EncodeError } from '../../core/errors.js';
import { DTYPE, type Dtype, type PixelArray } from './scene.js';

const require = createRequire(import.meta.url);
const zstd = require('@mongodb-js/zstd/bindings') as { decompress(data: Buffer): Promise<Buffer> };
const inflate = promisify(zlib.inflate);

/** Reads bytes [offset, offset + length) of the file: a local read, or an HTTP range read of an object store. */
export type RangeRead = (offset: number, length: number) => Promise<Uint8Array>;

export interface CogLevel {
  width: number;
  height: number;
  tileWidth: number;
  tileHeight: number;
  across: number;
  down: number;
  offsets: number[];
  counts: number[];
}

/** What a COG's first IFD says: the full resolution's grid, pixels and georeferencing. */
export interface CogInfo {
  bigtiff: boolean;
  dtype: Dtype;
  bands: number;
  compression: number;
  predictor: number;
  /** Full resolution first, then the overviews. */
  levels: CogLevel[];
  geotransform: [number, number, number, number, number, number];
  /** The EPSG code of ProjectedCSType or GeographicType. */
  epsg: number | null;
  nodata: number | null;
}

const HEAD = 16 * 1024;

/**
 * A reader of tiled GeoTIFFs as this writer makes them (and GDAL's COGs of the same options):
 * the IFDs are read with a few range reads at the head of the file, then each tile with one.
 * For the read path (windows by bbox, fetched tile by tile) and rebuilding a scene from its COG.
 * LZW tiles are not decoded (refused with an EncodeError).
 */
export class CogReader {
  private constructor(
    readonly info: CogInfo,
    private readonly read: RangeRead,
  ) {}

  /** Bytes fetched so far (IFDs and tiles), for measuring what a window read cost. */
  fetched = 0;

  static async open(read: RangeRead): Promise<CogReader> {
    let fetched = 0;
    let head = await read(0, HEAD);
    fetched += head.byteLength;
    const ensure = async (end: number) => {
      if (end <= head.byteLength) return;
      const more = await read(head.byteLength, Math.max(end - head.byteLength, head.byteLength));
      fetched += more.byteLength;
      const joined = new Uint8Array(head.byteLength + more.byteLength);
      joined.set(head);
      joined.set(more, head.byteLength);
      head = joined;
    };
    const view = () => new DataView(head.buffer, head.byteOffset, head.byteLength);
    if (head[0] !== 0x49 || head[1] !== 0x49) throw new EncodeError('not a little-endian TIFF');
    const magic = view().getUint16(2, true);
    const big = magic === 43;
    if (!big && magic !== 42) throw new EncodeError(`not a TIFF (magic ${magic})`);
    const u = (at: number, size: number) => (size === 2 ? view().getUint16(at, true) : size === 4 ? view().getUint32(at, true) : Number(view().getBigUint64(at, true)));
    const TYPE_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 11: 4, 12: 8, 16: 8 };
    let ifd = big ? u(8, 8) : u(4, 4);
    const ifds: Map<number, number[] | string>[] = [];
    while (ifd !== 0) {
      await ensure(ifd + 8);
      const count = big ? u(ifd, 8) : u(ifd, 2);
      const entry = big ? 20 : 12;
      const first = ifd + (big ? 8 : 2);
      await ensure(first + count * entry + 8);
      const tags = new Map<number, number[] | string>();
      for (let i = 0; i < count; i++) {
        const at = first + i * entry;
        const tag = u(at, 2);
        const type = u(at + 2, 2);
        const n = big ? u(at + 4, 8) : u(at + 4, 4);
        const size = TYPE_SIZE[type] ?? 1;
        const inline = big ? 8 : 4;
        let where = at + (big ? 12 : 8);
        if (n * size > inline) {
          where = big ? u(where, 8) : u(where, 4);
          await ensure(where + n * size);
        }
        if (type === 2) {
          tags.set(tag, Buffer.from(head.subarray(where, where + n)).toString('latin1').replace(/\0+$/, ''));
        } else {
          const values: number[] = [];
          for (let k = 0; k < n; k++) values.push(type === 12 ? view().getFloat64(where + k * 8, true) : u(where + k * size, size));
          tags.set(tag, values);
        }
      }
      ifds.push(tags);
      const next = first + count * entry;
      ifd = big ? u(next, 8) : u(next, 4);
    }
    const num = (tags: Map<number, number[] | string>, tag: number, fallback?: number): number => {
      const v = tags.get(tag);
      if (Array.isArray(v) && v.length > 0) return v[0]!;
      if (fallback !== undefined) return fallback;
      throw new EncodeError(`TIFF tag ${tag} missing`);
    };
    const arr = (tags: Map<number, number[] | string>, tag: number): number[] => {
      const v = tags.get(tag);
      if (!Array.isArray(v)) throw new EncodeError(`TIFF tag ${tag} missing: not a tiled TIFF`);
      return v;
    };
    const full = ifds[0]!;
    const bits = num(full, 258, 8);
    const format = num(full, 339, 1);
    const dtype = (Object.entries(DTYPE) as [Dtype, (typeof DTYPE)[Dtype]][]).find(([, i]) => i.bytes * 8 === bits && i.sampleFormat === format)?.[0];
    if (dtype === undefined) throw new EncodeError(`no dtype for ${bits}-bit samples of format ${format}`);
    const levels = ifds.map((tags) => {
      const width = num(tags, 256);
      const height = num(tags, 257);
      const tileWidth = num(tags, 322);
      const tileHeight = num(tags, 323);
      return { width, height, tileWidth, tileHeight, across: Math.ceil(width / tileWidth), down: Math.ceil(height / tileHeight), offsets: arr(tags, 324), counts: arr(tags, 325) };
    });
    const scale = arr(full, 33550);
    const tie = arr(full, 33922);
    const keys = full.get(34735);
    let epsg: number | null = null;
    if (Array.isArray(keys)) {
      for (let k = 4; k + 3 < keys.length; k += 4) if ((keys[k] === 3072 || keys[k] === 2048) && keys[k + 1] === 0) epsg = keys[k + 3]!;
    }
    const nodataText = full.get(42113);
    const reader = new CogReader(
      {
        bigtiff: big,
        dtype,
        bands: num(full, 277, 1),
        compression: num(full, 259, 1),
        predictor: num(full, 317, 1),
        levels,
        geotransform: [tie[3]! - tie[0]! * scale[0]!, scale[0]!, 0, tie[4]! + tie[1]! * scale[1]!, 0, -scale[1]!],
        epsg,
        nodata: typeof nodataText === 'string' ? Number(nodataText) : null,
      },
      read,
    );
    reader.fetched = fetched;
    return reader;
  }

  /** Tile (col, row) of `level`, decoded: full tile size (edge tiles padded, as stored). */
  async tile(col: number, row: number, level = 0): Promise<PixelArray> {
    const l = this.info.levels[level]!;
    const index = row * l.across + col;
    const data = await this.read(l.offsets[index]!, l.counts[index]!);
    this.fetched += data.byteLength;
    const { dtype, bands, compression, predictor } = this.info;
    const samples = l.tileWidth * l.tileHeight * bands;
    const bytes = DTYPE[dtype].bytes;
    let raw: Uint8Array;
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (compression === 1) raw = new Uint8Array(buf);
    else if (compression === 8) raw = await inflate(buf);
    else if (compression === 50000) raw = await zstd.decompress(buf);
    else throw new EncodeError(`TIFF compression ${compression} is not decoded here (DEFLATE, ZSTD and NONE are)`);
    if (raw.byteLength !== samples * bytes) throw new EncodeError(`tile (${col}, ${row}) of level ${level} decodes to ${raw.byteLength} bytes, expected ${samples * bytes}`);
    const aligned = new Uint8Array(samples * bytes);
    aligned.set(raw);
    const rowSamples = l.tileWidth * bands;
    if (predictor === 2) undoHorizontal(aligned, bytes, rowSamples, l.tileHeight, bands);
    else if (predictor === 3) undoFloatingPoint(aligned, bytes, rowSamples, l.tileHeight, bands);
    // Typed array constructors also take a buffer: the samples, without a copy.
    const View = DTYPE[dtype].array as unknown as new (buffer: ArrayBuffer) => PixelArray;
    return new View(aligned.buffer);
  }
}

function undoHorizontal(tile: Uint8Array, bytes: number, rowSamples: number, rows: number, spp: number): void {
  const { buffer } = tile;
  if (bytes === 8) {
    const w = new Uint32Array(buffer);
    for (let r = 0; r < rows; r++) {
      const start = r * rowSamples;
      for (let i = start + spp; i < start + rowSamples; i++) {
        const lo = w[2 * i]! + w[2 * (i - spp)]!;
        const carry = lo > 0xffffffff ? 1 : 0;
        w[2 * i] = lo;
        w[2 * i + 1] = w[2 * i + 1]! + w[2 * (i - spp) + 1]! + carry;
      }
    }
    return;
  }
  const a = bytes === 1 ? tile : bytes === 2 ? new Uint16Array(buffer) : new Uint32Array(buffer);
  for (let r = 0; r < rows; r++) {
    const start = r * rowSamples;
    for (let i = start + spp; i < start + rowSamples; i++) a[i] = a[i]! + a[i - spp]!;
  }
}

function undoFloatingPoint(tile: Uint8Array, bytes: number, rowSamples: number, rows: number, spp: number): void {
  const rowBytes = rowSamples * bytes;
  const scratch = new Uint8Array(rowBytes);
  for (let r = 0; r < rows; r++) {
    const row = tile.subarray(r * rowBytes, (r + 1) * rowBytes);
    for (let i = spp; i < rowBytes; i++) row[i] = (row[i]! + row[i - spp]!) & 0xff;
    scratch.set(row);
    for (let s = 0; s < rowSamples; s++) {
      for (let b = 0; b < bytes; b++) row[s * bytes + b] = scratch[(bytes - b - 1) * rowSamples + s]!;
    }
  }
}

/**
 * The pixels of window (x, y, w, h) of `level` (row-major, bands interleaved, little-endian
 * bytes), fetched tile by tile: only the tiles the window touches are read. `cache` keeps
 * decoded tiles across calls (the caller bounds it).
 */
export async function readWindow(reader: CogReader, x: number, y: number, w: number, h: number, level = 0, cache?: Map<number, PixelArray>): Promise<Uint8Array> {
  const l = reader.info.levels[level]!;
  const sample = DTYPE[reader.info.dtype].bytes * reader.info.bands;
  const out = new Uint8Array(w * h * sample);
  for (let row = Math.floor(y / l.tileHeight); row * l.tileHeight < y + h; row++) {
    for (let col = Math.floor(x / l.tileWidth); col * l.tileWidth < x + w; col++) {
      const index = row * l.across + col;
      let tile = cache?.get(index);
      if (tile === undefined) {
        tile = await reader.tile(col, row, level);
        cache?.set(index, tile);
      }
      const bytes = new Uint8Array(tile.buffer, tile.byteOffset, tile.byteLength);
      const tx = col * l.tileWidth;
      const ty = row * l.tileHeight;
      const x0 = Math.max(x, tx);
      const x1 = Math.min(x + w, tx + l.tileWidth);
      for (let yy = Math.max(y, ty); yy < Math.min(y + h, ty + l.tileHeight); yy++) {
        const from = ((yy - ty) * l.tileWidth + (x0 - tx)) * sample;
        out.set(bytes.subarray(from, from + (x1 - x0) * sample), ((yy - y) * w + (x0 - x)) * sample);
      }
    }
  }
  return out;
}
