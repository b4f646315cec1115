/**
 * TIFF and BigTIFF structure: header, GDAL's ghost area, and IFDs with their out-of-line values
 * right after each directory. Little-endian throughout.
 */
export const SHORT = 3;
export const LONG = 4;
export const ASCII = 2;
export const DOUBLE = 12;
export const LONG8 = 16;
export type TagType = typeof SHORT | typeof LONG | typeof ASCII | typeof DOUBLE | typeof LONG8;

const TYPE_SIZE: Record<TagType, number> = { [SHORT]: 2, [LONG]: 4, [ASCII]: 1, [DOUBLE]: 8, [LONG8]: 8 };

export interface Tag {
  tag: number;
  type: TagType;
  /** Numbers for SHORT/LONG/LONG8/DOUBLE; the text (NUL added) for ASCII. */
  values: readonly number[] | string;
}

export const TAG = {
  NewSubfileType: 254,
  ImageWidth: 256,
  ImageLength: 257,
  BitsPerSample: 258,
  Compression: 259,
  Photometric: 262,
  SamplesPerPixel: 277,
  PlanarConfig: 284,
  Predictor: 317,
  TileWidth: 322,
  TileLength: 323,
  TileOffsets: 324,
  TileByteCounts: 325,
  ExtraSamples: 338,
  SampleFormat: 339,
  ModelPixelScale: 33550,
  ModelTiepoint: 33922,
  GeoKeyDirectory: 34735,
  GdalNodata: 42113,
} as const;

/**
 * GDAL's ghost area (gtiffdataset_write.cpp): declares that IFDs precede the data, tiles are in
 * row-major order, each tile has a 4-byte size before it and its last 4 bytes repeated after it,
 * and that nothing has been edited since. The trailing space is GDAL's: it leaves room for
 * KNOWN_INCOMPATIBLE_EDITION=YES.
 */
export const GHOST_AREA = (() => {
  const payload =
    'LAYOUT=IFDS_BEFORE_DATA\n' +
    'BLOCK_ORDER=ROW_MAJOR\n' +
    'BLOCK_LEADER=SIZE_AS_UINT4\n' +
    'BLOCK_TRAILER=LAST_4_BYTES_REPEATED\n' +
    'KNOWN_INCOMPATIBLE_EDITION=NO\n ';
  return Buffer.from(`GDAL_STRUCTURAL_METADATA_SIZE=${String(payload.length).padStart(6, '0')} bytes\n${payload}`, 'latin1');
})();

export const headerSize = (big: boolean) => (big ? 16 : 8);
/** Where the first IFD starts: after the header and the ghost area, on a 2-byte boundary. */
export const firstIfdOffset = (big: boolean) => align2(headerSize(big) + GHOST_AREA.length);

const align2 = (n: number) => n + (n & 1);
const valueBytes = (t: Tag) => TYPE_SIZE[t.type] * count(t);
const count = (t: Tag) => (typeof t.values === 'string' ? Buffer.byteLength(t.values, 'latin1') + 1 : t.values.length);

/** Bytes taken by an IFD and its out-of-line values. */
export function ifdSize(tags: readonly Tag[], big: boolean): number {
  const entry = big ? 20 : 12;
  const inline = big ? 8 : 4;
  let size = (big ? 8 : 2) + tags.length * entry + (big ? 8 : 4);
  for (const t of tags) {
    const n = valueBytes(t);
    if (n > inline) size += align2(n);
  }
  return size;
}

export function writeHeader(buf: Buffer, big: boolean): void {
  buf.write('II', 0, 'latin1');
  if (big) {
    buf.writeUInt16LE(43, 2);
    buf.writeUInt16LE(8, 4);
    buf.writeUInt16LE(0, 6);
    buf.writeBigUInt64LE(BigInt(firstIfdOffset(big)), 8);
  } else {
    buf.writeUInt16LE(42, 2);
    buf.writeUInt32LE(firstIfdOffset(big), 4);
  }
  GHOST_AREA.copy(buf, headerSize(big));
}

/** Writes an IFD (tags sorted by number) at `at`, its values right after; returns the end. */
export function writeIfd(buf: Buffer, at: number, tags: readonly Tag[], nextIfd: number, big: boolean): number {
  const sorted = [...tags].sort((a, b) => a.tag - b.tag);
  const entry = big ? 20 : 12;
  const inline = big ? 8 : 4;
  let pos = at;
  if (big) {
    buf.writeBigUInt64LE(BigInt(sorted.length), pos);
    pos += 8;
  } else {
    buf.writeUInt16LE(sorted.length, pos);
    pos += 2;
  }
  let extra = pos + sorted.length * entry + (big ? 8 : 4);
  for (const t of sorted) {
    buf.writeUInt16LE(t.tag, pos);
    buf.writeUInt16LE(t.type, pos + 2);
    const n = count(t);
    if (big) buf.writeBigUInt64LE(BigInt(n), pos + 4);
    else buf.writeUInt32LE(n, pos + 4);
    const valueAt = pos + (big ? 12 : 8);
    const bytes = valueBytes(t);
    if (bytes <= inline) {
      writeValues(buf, valueAt, t);
    } else {
      if (big) buf.writeBigUInt64LE(BigInt(extra), valueAt);
      else buf.writeUInt32LE(extra, valueAt);
      writeValues(buf, extra, t);
      extra += align2(bytes);
    }
    pos += entry;
  }
  if (big) buf.writeBigUInt64LE(BigInt(nextIfd), pos);
  else buf.writeUInt32LE(nextIfd, pos);
  return extra;
}

function writeValues(buf: Buffer, at: number, t: Tag): void {
  if (typeof t.values === 'string') {
    buf.write(t.values, at, 'latin1');
    buf[at + Buffer.byteLength(t.values, 'latin1')] = 0;
    return;
  }
  let pos = at;
  for (const v of t.values) {
    switch (t.type) {
      case SHORT:
        buf.writeUInt16LE(v, pos);
        break;
      case LONG:
        buf.writeUInt32LE(v, pos);
        break;
      case LONG8:
        buf.writeBigUInt64LE(BigInt(v), pos);
        break;
      case DOUBLE:
        buf.writeDoubleLE(v, pos);
        break;
    }
    pos += TYPE_SIZE[t.type];
  }
}
