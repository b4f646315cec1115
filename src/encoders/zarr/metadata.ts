import type { ChunkCodec, ZarrFormat } from './codecs.js';

/** The data types the stores write: numbers little-endian, strings variable-length UTF-8. */
export type ZarrDtype = 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'int64' | 'float32' | 'float64' | 'string';

/** One array of a store, whatever the metadata version. */
export interface ArraySpec {
  /** Path inside the store (`precipitation`, `time`). */
  name: string;
  dtype: ZarrDtype;
  shape: number[];
  chunks: number[];
  /** Number, NaN, or null (strings: ""). */
  fillValue: number | null;
  dimensions: string[];
  attributes: Record<string, unknown>;
}

export interface StoreLayout {
  format: ZarrFormat;
  /** Between chunk indices in chunk keys. */
  separator: '/' | '.';
  codec: ChunkCodec;
}

const V2_DTYPE: Record<ZarrDtype, string> = {
  uint8: '|u1', int8: '|i1', uint16: '<u2', int16: '<i2', uint32: '<u4', int32: '<i4', int64: '<i8', float32: '<f4', float64: '<f8', string: '|O',
};

/** Bytes per element of an array of `dtype` (v2 dtype strings and v3 data types too): what blosc shuffles by; 1 for strings. */
export function itemSizeOf(dtype: string): number {
  const bytes = /^[<>|][uif](\d+)$/.exec(dtype)?.[1];
  if (bytes !== undefined) return Number(bytes);
  const bits = /^u?(?:int|float)(\d+)$/.exec(dtype)?.[1];
  return bits === undefined ? 1 : Number(bits) / 8;
}

/** JSON has no NaN or infinities: Zarr spells them as strings. */
export function jsonFill(value: number | null): number | string | null {
  if (value === null) return null;
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  return value;
}

/** Fixed key order and two-space indentation, like zarr-python: same store state, same bytes. */
export const jsonBytes = (value: unknown): Uint8Array => new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);

export function chunkKey(layout: StoreLayout, array: string, index: readonly number[]): string {
  // A 0-d array (a CF grid mapping variable) has one chunk: "0" in v2, "c" in v3.
  if (index.length === 0) return layout.format === 2 ? `${array}/0` : `${array}/c`;
  const joined = index.join(layout.separator);
  return layout.format === 2 ? `${array}/${joined}` : `${array}/c${layout.separator}${joined}`;
}

/** v2: the array's `.zarray` and `.zattrs` (xarray's `_ARRAY_DIMENSIONS`). */
export function v2ArrayMeta(spec: ArraySpec, layout: StoreLayout): { zarray: Record<string, unknown>; zattrs: Record<string, unknown> } {
  const isString = spec.dtype === 'string';
  return {
    zarray: {
      chunks: spec.chunks,
      compressor: layout.codec.v2,
      dimension_separator: layout.separator,
      dtype: V2_DTYPE[spec.dtype],
      fill_value: isString ? '' : jsonFill(spec.fillValue),
      filters: isString ? [{ id: 'vlen-utf8' }] : null,
      order: 'C',
      shape: spec.shape,
      zarr_format: 2,
    },
    zattrs: { _ARRAY_DIMENSIONS: spec.dimensions, ...spec.attributes },
  };
}

/** xarray's v3 `_FillValue` attribute (what it masks): an integer, or a float as base64 of its little-endian double (its FillValueCoder). */
function xarrayFill(spec: ArraySpec): number | string {
  const value = spec.fillValue!;
  if (!spec.dtype.startsWith('float')) return value;
  // Always a double, float32 arrays too (the coder unpacks '<d').
  const b = Buffer.alloc(8);
  b.writeDoubleLE(value);
  return b.toString('base64');
}

/** v3: the array's `zarr.json`. */
export function v3ArrayMeta(spec: ArraySpec, layout: StoreLayout): Record<string, unknown> {
  const isString = spec.dtype === 'string';
  const fill = isString ? '' : jsonFill(spec.fillValue ?? 0);
  return {
    zarr_format: 3,
    node_type: 'array',
    shape: spec.shape,
    data_type: spec.dtype,
    chunk_grid: { name: 'regular', configuration: { chunk_shape: spec.chunks } },
    chunk_key_encoding: { name: 'default', configuration: { separator: layout.separator } },
    fill_value: fill,
    codecs: [isString ? { name: 'vlen-utf8' } : { name: 'bytes', configuration: { endian: 'little' } }, ...layout.codec.v3(itemSizeOf(spec.dtype))],
    attributes: spec.fillValue === null || isString ? spec.attributes : { _FillValue: xarrayFill(spec), ...spec.attributes },
    dimension_names: spec.dimensions,
  };
}

/**
 * Every metadata key of a store with these arrays and group attributes, in the order they are
 * written: arrays first, then the group, then (v2) the consolidated `.zmetadata`, whose write
 * makes the new shapes visible to readers that open with consolidated metadata (xarray's default).
 */
export function storeMetadata(arrays: readonly ArraySpec[], groupAttributes: Record<string, unknown>, layout: StoreLayout): { key: string; value: unknown }[] {
  const sorted = [...arrays].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (layout.format === 3) {
    const arraysMeta = sorted.map((a) => ({ key: `${a.name}/zarr.json`, value: v3ArrayMeta(a, layout) }));
    // zarr-python 3's inline consolidated metadata: one read opens the store, and the group's write makes the new shapes visible.
    const consolidated = Object.fromEntries(sorted.map((a, i) => [a.name, arraysMeta[i]!.value]));
    return [
      ...arraysMeta,
      { key: 'zarr.json', value: { zarr_format: 3, node_type: 'group', attributes: groupAttributes, consolidated_metadata: { kind: 'inline', must_understand: false, metadata: consolidated } } },
    ];
  }
  const out: { key: string; value: unknown }[] = [];
  for (const a of sorted) {
    const { zarray, zattrs } = v2ArrayMeta(a, layout);
    out.push({ key: `${a.name}/.zarray`, value: zarray }, { key: `${a.name}/.zattrs`, value: zattrs });
  }
  out.push({ key: '.zgroup', value: { zarr_format: 2 } }, { key: '.zattrs', value: groupAttributes });
  const consolidated: Record<string, unknown> = {};
  for (const { key, value } of out) consolidated[key] = value;
  out.push({ key: '.zmetadata', value: { metadata: consolidated, zarr_consolidated_format: 1 } });
  return out;
}
