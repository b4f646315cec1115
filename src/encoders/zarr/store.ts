import { createHash } from 'node:crypto';
import type { Backend } from '../../core/backend.js';
import { NotFoundError } from '../../core/errors.js';
import { failpoint } from '../../core/failpoint.js';
import { chunkKey, itemSizeOf, jsonBytes, storeMetadata, type ArraySpec, type StoreLayout } from './metadata.js';

/** Metadata keys written at once by a commit (each an atomic put, fsynced on local files). */
const METADATA_WRITES = 8;

/** A chunk's cells, in C order: numbers, or strings for `string` arrays. */
export type Cells = (number | string)[];

const TYPED = {
  uint8: Uint8Array, int8: Int8Array, uint16: Uint16Array, int16: Int16Array, uint32: Uint32Array, int32: Int32Array, float32: Float32Array, float64: Float64Array,
} as const;

export function encodeCells(spec: ArraySpec, cells: Cells): Uint8Array {
  if (spec.dtype === 'string') {
    // numcodecs' VLenUTF8 (= v3 vlen-utf8): item count, then each item's byte length and UTF-8 bytes, all u32 little-endian.
    const parts = cells.map((c) => Buffer.from(String(c), 'utf8'));
    const out = Buffer.alloc(4 + parts.reduce((n, p) => n + 4 + p.length, 0));
    out.writeUInt32LE(parts.length, 0);
    let at = 4;
    for (const p of parts) {
      out.writeUInt32LE(p.length, at);
      p.copy(out, at + 4);
      at += 4 + p.length;
    }
    return out;
  }
  if (spec.dtype === 'int64') {
    const a = new BigInt64Array(cells.length);
    cells.forEach((c, i) => (a[i] = BigInt(c as number)));
    return new Uint8Array(a.buffer);
  }
  const a = new TYPED[spec.dtype](cells.length);
  cells.forEach((c, i) => (a[i] = c as number));
  return new Uint8Array(a.buffer);
}

export function decodeCells(spec: ArraySpec, bytes: Uint8Array): Cells {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (spec.dtype === 'string') {
    const n = buf.readUInt32LE(0);
    const out: string[] = [];
    let at = 4;
    for (let i = 0; i < n; i++) {
      const len = buf.readUInt32LE(at);
      out.push(buf.toString('utf8', at + 4, at + 4 + len));
      at += 4 + len;
    }
    return out;
  }
  const copy = new Uint8Array(bytes); // aligned
  if (spec.dtype === 'int64') return Array.from(new BigInt64Array(copy.buffer), Number);
  return Array.from(new TYPED[spec.dtype](copy.buffer));
}

export const cellCount = (spec: ArraySpec) => spec.chunks.reduce((n, c) => n * c, 1);
export const fillCell = (spec: ArraySpec): number | string => (spec.dtype === 'string' ? '' : spec.fillValue ?? 0);

/**
 * A Zarr store under a prefix of a Backend. Every key is one put, which the backends make atomic
 * (local_file: temp file, fsync, rename, fsync of the folder; object stores: one request), so a
 * killed write leaves the old chunk or the new one, never half of one.
 */
export class ZarrStore {
  constructor(
    readonly backend: Backend,
    /** The store's root key, without a trailing slash. */
    readonly root: string,
    readonly layout: StoreLayout,
  ) {}

  key(path: string): string {
    return `${this.root}/${path}`;
  }

  async getMaybe(path: string): Promise<Uint8Array | undefined> {
    try {
      return await this.backend.get(this.key(path));
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  }

  async put(path: string, bytes: Uint8Array): Promise<void> {
    await this.backend.put(this.key(path), bytes, { contentType: path.endsWith('.json') || path.split('/').pop()!.startsWith('.') ? 'application/json' : 'application/octet-stream' });
  }

  async readJson(path: string): Promise<unknown> {
    const bytes = await this.getMaybe(path);
    return bytes === undefined ? undefined : JSON.parse(Buffer.from(bytes).toString('utf8'));
  }

  async readChunk(spec: ArraySpec, index: readonly number[]): Promise<Cells | undefined> {
    const bytes = await this.getMaybe(chunkKey(this.layout, spec.name, index));
    return bytes === undefined ? undefined : decodeCells(spec, await this.layout.codec.decode(bytes));
  }

  async writeChunk(spec: ArraySpec, index: readonly number[], cells: Cells): Promise<void> {
    await this.put(chunkKey(this.layout, spec.name, index), await this.layout.codec.encode(encodeCells(spec, cells), itemSizeOf(spec.dtype)));
    failpoint('zarr.chunk');
  }

  async deleteChunk(spec: ArraySpec, index: readonly number[]): Promise<void> {
    await this.backend.delete(this.key(chunkKey(this.layout, spec.name, index)));
  }

  /**
   * Writes the metadata of every array and the group, consolidated last; returns the sha256 of
   * the key written last (what the catalog row records as the store's state).
   */
  async commitMetadata(arrays: readonly ArraySpec[], groupAttributes: Record<string, unknown>): Promise<string> {
    const entries = storeMetadata(arrays, groupAttributes, this.layout).map(({ key, value }) => ({ key, bytes: jsonBytes(value) }));
    const consolidated = entries.pop()!;
    // Readers that open with consolidated metadata see none of these until the last write, so
    // they go side by side; unchanged ones are not rewritten (most appends change a shape or two).
    await eachBounded(entries, METADATA_WRITES, async ({ key, bytes }) => {
      const old = await this.getMaybe(key);
      if (old === undefined || Buffer.compare(Buffer.from(old), Buffer.from(bytes)) !== 0) await this.put(key, bytes);
    });
    failpoint('zarr.metadata');
    await this.put(consolidated.key, consolidated.bytes);
    return createHash('sha256').update(consolidated.bytes).digest('hex');
  }

  /** Every key of the store with its size. */
  async keys(): Promise<{ key: string; size: number }[]> {
    const out: { key: string; size: number }[] = [];
    for await (const s of this.backend.list(`${this.root}/`)) out.push({ key: s.key, size: s.size });
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }
}

/** Runs `work` on every item, at most `limit` at a time; the first failure rejects (after the running ones settle). */
export async function eachBounded<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { error: unknown } | undefined;
  const lane = async () => {
    while (failed === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (error) {
        failed ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failed !== undefined) throw failed.error;
}
