import { ThriftReader, type ThriftStruct, encodeStruct } from './thrift.js';
import { concat } from '../../core/body.js';

/**
 * Compresses the pages of an uncompressed Parquet file with a codec at a level of our choosing.
 *
 * parquet-wasm (arrow-rs) writes ZSTD, GZIP and BROTLI only at the codec's default level, so the
 * encoder has it write UNCOMPRESSED and compresses each page here: page boundaries, encodings,
 * statistics, the page index and all metadata (ARROW:schema, geo) stay arrow-rs's own; only page
 * bodies, their sizes and the offsets that point at them change.
 *
 * Field ids are parquet.thrift's.
 */

/** parquet.thrift CompressionCodec (not parquet-wasm's own enum, whose numbers differ). */
export const ParquetCodec = { UNCOMPRESSED: 0, GZIP: 2, BROTLI: 4, ZSTD: 6 } as const;

/** Compresses one page body; pages are independent, so calls may run concurrently. */
export type PageCompressor = (page: Uint8Array) => Promise<Uint8Array>;

const MAGIC = [0x50, 0x41, 0x52, 0x31]; // PAR1
const PageType = { DATA_PAGE: 0, DICTIONARY_PAGE: 2 };

interface Page {
  oldOffset: number;
  header: ThriftStruct;
  body: Uint8Array;
}
interface Chunk {
  column: ThriftStruct; // ColumnChunk
  meta: ThriftStruct; // ColumnMetaData
  start: number;
  end: number;
  pages: Page[];
}
/** Something after the column chunks that a ColumnChunk points at (page index, bloom filter). */
interface TailBlob {
  offset: number;
  length: number;
  owner: ThriftStruct;
  offsetField: number;
  lengthField: number;
  offsetIndex: boolean;
}

export async function recompressParquet(file: Uint8Array, codec: number, compress: PageCompressor): Promise<Uint8Array> {
  const n = file.length;
  if (n < 12 || MAGIC.some((b, i) => file[i] !== b || file[n - 4 + i] !== b)) throw new Error('not a Parquet file');
  const footerLength = new DataView(file.buffer, file.byteOffset + n - 8, 4).getUint32(0, true);
  const footerStart = n - 8 - footerLength;
  const meta = new ThriftReader(file, footerStart).struct();

  // Column chunks, which arrow-rs writes back to back in row-group and column order.
  const chunks: Chunk[] = [];
  let cursor = MAGIC.length;
  for (const rowGroup of meta.list(4) as ThriftStruct[]) {
    for (const column of rowGroup.list(1) as ThriftStruct[]) {
      const cm = column.struct(3);
      if (cm.i32(4) !== ParquetCodec.UNCOMPRESSED) throw new Error('column chunk is already compressed');
      if (cm.has(10)) throw new Error('column chunk has an index page');
      const start = cm.has(11) ? cm.i64(11) : cm.i64(9);
      const end = start + cm.i64(7);
      if (start !== cursor) throw new Error(`column chunk at ${start}, expected ${cursor}`);
      chunks.push({ column, meta: cm, start, end, pages: readPages(file, start, end) });
      cursor = end;
    }
  }

  const compressed = await Promise.all(chunks.flatMap((c) => c.pages.map((p) => compress(p.body))));

  const parts: Uint8Array[] = [Uint8Array.from(MAGIC)];
  let pos = MAGIC.length;
  const moved = new Map<number, { offset: number; size: number }>(); // old page offset → new page
  let next = 0;
  for (const chunk of chunks) {
    const chunkStart = pos;
    let uncompressedTotal = 0;
    for (const page of chunk.pages) {
      const body = compressed[next++]!;
      page.header.set(3, body.length);
      const header = encodeStruct(page.header);
      moved.set(page.oldOffset, { offset: pos, size: header.length + body.length });
      parts.push(header, body);
      pos += header.length + body.length;
      uncompressedTotal += header.length + page.header.i32(2);
    }
    const { meta: cm, column } = chunk;
    cm.set(4, codec);
    cm.set(6, BigInt(uncompressedTotal));
    cm.set(7, BigInt(pos - chunkStart));
    cm.set(9, BigInt(newOffset(moved, cm.i64(9))));
    if (cm.has(11)) cm.set(11, BigInt(newOffset(moved, cm.i64(11))));
    // ColumnChunk.file_offset is deprecated: arrow-rs writes 0, older writers the chunk's start.
    if (column.has(2) && column.i64(2) !== 0) {
      if (column.i64(2) !== chunk.start) throw new Error('unexpected ColumnChunk.file_offset');
      column.set(2, BigInt(chunkStart));
    }
  }

  for (const rowGroup of meta.list(4) as ThriftStruct[]) {
    const columns = (rowGroup.list(1) as ThriftStruct[]).map((c) => c.struct(3));
    rowGroup.set(2, BigInt(columns.reduce((s, c) => s + c.i64(6), 0)));
    if (rowGroup.has(5)) rowGroup.set(5, BigInt(columns[0]!.has(11) ? columns[0]!.i64(11) : columns[0]!.i64(9)));
    if (rowGroup.has(6)) rowGroup.set(6, BigInt(columns.reduce((s, c) => s + c.i64(7), 0)));
  }

  // Page indexes (and bloom filters, if any) follow the chunks; they move, and an offset index
  // lists page offsets and sizes, so it is rewritten. They must fill the gap before the footer.
  const blobs = tailBlobs(chunks).sort((a, b) => a.offset - b.offset);
  for (const blob of blobs) {
    if (blob.offset !== cursor) throw new Error(`unexpected bytes at ${cursor} after the column chunks`);
    cursor += blob.length;
    let bytes = file.subarray(blob.offset, blob.offset + blob.length);
    if (blob.offsetIndex) {
      const index = new ThriftReader(bytes, 0).struct();
      for (const location of index.list(1) as ThriftStruct[]) {
        const page = moved.get(location.i64(1));
        if (page === undefined) throw new Error('offset index names an unknown page');
        location.set(1, BigInt(page.offset));
        location.set(2, page.size);
      }
      bytes = encodeStruct(index);
    }
    blob.owner.set(blob.offsetField, BigInt(pos));
    blob.owner.set(blob.lengthField, bytes.length);
    parts.push(bytes);
    pos += bytes.length;
  }
  if (cursor !== footerStart) throw new Error(`unexpected bytes at ${cursor} before the footer`);

  const footer = encodeStruct(meta);
  const trailer = new Uint8Array(8);
  new DataView(trailer.buffer).setUint32(0, footer.length, true);
  trailer.set(MAGIC, 4);
  parts.push(footer, trailer);
  return concat(parts, pos + footer.length + trailer.length);
}

function readPages(file: Uint8Array, start: number, end: number): Page[] {
  const pages: Page[] = [];
  let pos = start;
  while (pos < end) {
    const reader = new ThriftReader(file, pos);
    const header = reader.struct();
    const type = header.i32(1);
    // A v2 data page keeps its levels uncompressed, and a CRC would cover the compressed
    // bytes: arrow-rs writes neither unless asked to, and we do not ask.
    if (type !== PageType.DATA_PAGE && type !== PageType.DICTIONARY_PAGE) throw new Error(`unsupported page type ${type}`);
    if (header.has(4)) throw new Error('page has a CRC');
    if (header.i32(2) !== header.i32(3)) throw new Error('page is not uncompressed');
    const bodyEnd = reader.pos + header.i32(3);
    pages.push({ oldOffset: pos, header, body: file.subarray(reader.pos, bodyEnd) });
    pos = bodyEnd;
  }
  if (pos !== end) throw new Error('pages overrun their column chunk');
  return pages;
}

function tailBlobs(chunks: Chunk[]): TailBlob[] {
  const blobs: TailBlob[] = [];
  const add = (owner: ThriftStruct, offsetField: number, lengthField: number, offsetIndex: boolean) => {
    if (!owner.has(offsetField)) return;
    if (!owner.has(lengthField)) throw new Error(`thrift field ${offsetField} has no length`);
    blobs.push({ offset: owner.i64(offsetField), length: owner.i32(lengthField), owner, offsetField, lengthField, offsetIndex });
  };
  for (const { column, meta } of chunks) {
    add(column, 4, 5, true); // offset index
    add(column, 6, 7, false); // column index
    add(meta, 14, 15, false); // bloom filter
  }
  return blobs;
}

function newOffset(moved: Map<number, { offset: number }>, old: number): number {
  const page = moved.get(old);
  if (page === undefined) throw new Error(`no page at offset ${old}`);
  return page.offset;
}
