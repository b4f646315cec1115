import { createHash } from 'node:crypto';
import { MigrationError } from '../../core/errors.js';
import { failpoint } from '../../core/failpoint.js';
import { itemSizeOf, jsonBytes } from './metadata.js';
import type { ZarrStoreSink } from './sink.js';

/** A key of a store as copied: its path below the root, size and sha256. */
export interface StoreKey {
  key: string;
  bytes: number;
  sha256: string;
}

const METADATA = /(^|\/)(\.zarray|\.zattrs|\.zgroup|\.zmetadata|zarr\.json)$/;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Metadata keys last, the consolidated one (`.zmetadata`, the group's `zarr.json`) at the very end: the copy becomes a store only when complete. */
function writeOrder(keys: string[], root: string): string[] {
  const rank = (k: string) => (k === `${root}/.zmetadata` || k === `${root}/zarr.json` ? 2 : METADATA.test(k) ? 1 : 0);
  return [...keys].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Copies a store as a unit, key by key, to another tier's store sink: chunks re-compressed when
 * the codec differs (the array layout, chunking and chunk keys stay as they are), metadata
 * rewritten to name the new compressor, consolidated metadata last. Returns every key written
 * with its digest (the manifest the verify step reads back) and the last key's digest.
 */
export async function copyStore(from: ZarrStoreSink, to: ZarrStoreSink, root: string): Promise<{ keys: StoreKey[]; sha256: string }> {
  if (from.layout.format !== to.layout.format) {
    throw new MigrationError(`${root}: a Zarr v${from.layout.format} store cannot move to a v${to.layout.format} tier (no conversion between versions yet)`);
  }
  const same = from.layout.codec.name === to.layout.codec.name && from.layout.codec.level === to.layout.codec.level;
  const listed = (await from.keysOf(root)).map((k) => k.key);
  // A killed append's intent: the store's next append restores it; moving it now would carry its chunks along.
  if (listed.some((k) => k.endsWith('/.earthmem-append.json'))) throw new MigrationError(`${root}: an append to it is unfinished; it moves after the next append to it`, { retriable: true });
  const source = listed.filter((k) => !k.split('/').pop()!.endsWith('.tmp'));
  const out: StoreKey[] = [];
  let last = '';
  const itemSizes = same ? new Map<string, number>() : await arrayItemSizes(from, root);
  for (const key of writeOrder(source, root)) {
    let bytes = await from.backend.get(key);
    if (!same) {
      const array = key.slice(root.length + 1).split('/')[0]!;
      bytes = METADATA.test(key) ? recompressMetadata(bytes, key, to) : await to.layout.codec.encode(await from.layout.codec.decode(bytes), itemSizes.get(array) ?? 1);
    }
    await to.backend.put(key, bytes);
    failpoint('zarr.copying');
    out.push({ key, bytes: bytes.byteLength, sha256: (last = sha(bytes)) });
  }
  return { keys: out, sha256: last };
}

/** Per array of the store, its bytes per element, from the consolidated metadata. */
async function arrayItemSizes(from: ZarrStoreSink, root: string): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  const consolidated = JSON.parse(Buffer.from(await from.backend.get(`${root}/${from.layout.format === 2 ? '.zmetadata' : 'zarr.json'}`)).toString('utf8')) as {
    metadata?: Record<string, { dtype?: string }>;
    consolidated_metadata?: { metadata: Record<string, { data_type?: string }> };
  };
  for (const [key, meta] of Object.entries(consolidated.metadata ?? {})) if (key.endsWith('/.zarray') && meta.dtype !== undefined) sizes.set(key.slice(0, -'/.zarray'.length), itemSizeOf(meta.dtype));
  for (const [name, meta] of Object.entries(consolidated.consolidated_metadata?.metadata ?? {})) if (meta.data_type !== undefined) sizes.set(name, itemSizeOf(meta.data_type));
  return sizes;
}

/** The metadata JSON with the destination's compressor in every array's description. */
function recompressMetadata(bytes: Uint8Array, key: string, to: ZarrStoreSink): Uint8Array {
  const value = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
  const fixArray = (meta: Record<string, unknown>) => {
    if (meta.zarr_format === 2 && 'compressor' in meta) meta.compressor = to.layout.codec.v2;
    if (meta.zarr_format === 3 && meta.node_type === 'array') meta.codecs = [(meta.codecs as unknown[])[0], ...to.layout.codec.v3(itemSizeOf(String(meta.data_type)))];
  };
  if (key.endsWith('.zmetadata')) {
    for (const [k, v] of Object.entries(value.metadata as Record<string, Record<string, unknown>>)) if (k.endsWith('.zarray')) fixArray(v);
  } else if (key.endsWith('zarr.json') && value.node_type === 'group') {
    const consolidated = value.consolidated_metadata as { metadata: Record<string, Record<string, unknown>> } | undefined;
    for (const v of Object.values(consolidated?.metadata ?? {})) fixArray(v);
  } else fixArray(value);
  return jsonBytes(value);
}

/** Reads every copied key back: present, same size and digest, and no other key under the root. */
export async function verifyStore(to: ZarrStoreSink, root: string, expected: readonly StoreKey[]): Promise<string[]> {
  const problems: string[] = [];
  const listed = new Set((await to.keysOf(root)).map((k) => k.key));
  for (const k of expected) {
    if (!listed.delete(k.key)) {
      problems.push(`${k.key} is missing`);
      continue;
    }
    const bytes = await to.backend.get(k.key);
    if (bytes.byteLength !== k.bytes || sha(bytes) !== k.sha256) problems.push(`${k.key} reads back as ${bytes.byteLength} bytes, sha256 ${sha(bytes)}`);
  }
  for (const extra of listed) if (!extra.split('/').pop()!.endsWith('.tmp')) problems.push(`${extra} is not part of the copy`);
  return problems;
}
