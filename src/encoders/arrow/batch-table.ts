import type { Table } from 'apache-arrow';
import type { PipelineBatch } from '../../core/batch.js';
import { PointColumnsBuilder } from './point-builder.js';
import type { PointRecord, VectorRecord } from '../../core/record.js';
import { geometryWkb, geoParquetTypeName } from '../wkb.js';
import {
  binaryColumn, DictBuilder, dictUtf8Column, NumberBuilder, float64Column, pointWkbColumn, tableOf, timestampUsColumn, utf8Column,
  type ColumnSpec, type DictColumn, type NumberColumn, type Order,
} from './columns.js';

/**
 * A batch packed into columns: typed arrays, low-cardinality strings as dictionaries, unique
 * strings (ids, JSON text) as arrays (cloning those measured cheaper on the sending thread than
 * UTF-8 encoding them there). What an encode worker is sent, its buffers transferred; the table
 * is built from it in every case, so pooled and in-process encodes give the same bytes.
 * Rows are in batch order; `columnsToTable` puts them in storage order.
 */
interface CommonColumns {
  length: number;
  id: (string | null)[];
  dataset: DictColumn;
  timeUs: Float64Array;
  /** Source positions, for the storage order's ties. */
  source: DictColumn;
  partition: Float64Array;
  offset: Float64Array;
  /** [minLon, minLat, maxLon, maxLat] over the rows (Infinity … when there are none). */
  bbox: [number, number, number, number];
  /** GeoParquet geometry type names present, e.g. `Point`, `Polygon Z`. */
  geometryTypes: string[];
}

export interface PointColumns extends CommonColumns {
  kind: 'point';
  variable: DictColumn;
  value: NumberColumn;
  unit: DictColumn;
  quality: DictColumn;
  station: DictColumn;
  elevation: NumberColumn;
  lon: Float64Array;
  lat: Float64Array;
  attrs: (string | null)[];
}

export interface VectorColumns extends CommonColumns {
  kind: 'vector';
  variable: DictColumn;
  value: NumberColumn;
  properties: (string | null)[];
  /** WKB of each row: `data[offsets[i] … offsets[i + 1]]`. */
  geometry: { data: Uint8Array; offsets: Int32Array };
}

export type BatchColumns = PointColumns | VectorColumns;

/** One pass over the records (or the columns a point batch kept); runs on the thread that holds them. */
export function packBatch(batch: PipelineBatch): BatchColumns {
  if (batch.columns !== undefined) {
    if (!(batch.columns instanceof PointColumnsBuilder)) throw new Error('a column batch not built by PointColumnsBuilder');
    return batch.columns.finish();
  }
  return batch.kind === 'point' ? packPoints(batch.records as PointRecord[]) : packVectors(batch.records as VectorRecord[]);
}

export function packPoints(records: readonly PointRecord[]): PointColumns {
  const n = records.length;
  const id: (string | null)[] = new Array(n);
  const attrs: (string | null)[] = new Array(n);
  const [dataset, variable, unit, quality, station, source] = Array.from({ length: 6 }, () => new DictBuilder(n)) as [DictBuilder, DictBuilder, DictBuilder, DictBuilder, DictBuilder, DictBuilder];
  const value = new NumberBuilder(n);
  const elevation = new NumberBuilder(n);
  const timeUs = new Float64Array(n), partition = new Float64Array(n), offset = new Float64Array(n);
  const lon = new Float64Array(n), lat = new Float64Array(n);
  let w = Infinity, s = Infinity, e = -Infinity, north = -Infinity;
  for (let i = 0; i < n; i++) {
    const r = records[i]!;
    id[i] = r.id ?? null;
    attrs[i] = r.attrs ?? null;
    dataset.push(r.dataset);
    variable.push(r.variable);
    unit.push(r.unit);
    quality.push(r.quality);
    station.push(r.station);
    source.push(r.position.source);
    value.push(r.value);
    elevation.push(r.elevation);
    timeUs[i] = r.timeUs;
    partition[i] = r.position.partition;
    offset[i] = r.position.offset;
    lon[i] = r.lon;
    lat[i] = r.lat;
    if (r.lon < w) w = r.lon;
    if (r.lat < s) s = r.lat;
    if (r.lon > e) e = r.lon;
    if (r.lat > north) north = r.lat;
  }
  return {
    kind: 'point', length: n, id, dataset: dataset.column(), timeUs, source: source.column(), partition, offset,
    bbox: [w, s, e, north], geometryTypes: n === 0 ? [] : ['Point'],
    variable: variable.column(), value: value.column(), unit: unit.column(), quality: quality.column(), station: station.column(),
    elevation: elevation.column(), lon, lat, attrs,
  };
}

function packVectors(records: readonly VectorRecord[]): VectorColumns {
  const n = records.length;
  const id: (string | null)[] = new Array(n);
  const properties: (string | null)[] = new Array(n);
  const [dataset, variable, source] = [new DictBuilder(n), new DictBuilder(n), new DictBuilder(n)];
  const value = new NumberBuilder(n);
  const timeUs = new Float64Array(n), partition = new Float64Array(n), offset = new Float64Array(n);
  const wkb: Uint8Array[] = new Array(n);
  const offsets = new Int32Array(n + 1);
  const types = new Set<string>();
  const bbox: [number, number, number, number] = [Infinity, Infinity, -Infinity, -Infinity];
  let total = 0;
  for (let i = 0; i < n; i++) {
    const r = records[i]!;
    id[i] = r.id ?? null;
    properties[i] = r.properties ?? null;
    dataset.push(r.dataset);
    variable.push(r.variable);
    source.push(r.position.source);
    value.push(r.value);
    timeUs[i] = r.timeUs;
    partition[i] = r.position.partition;
    offset[i] = r.position.offset;
    // Geometries are objects, so they go as WKB: measured cheaper to write here (~1 µs a polygon)
    // than GeoJSON text is to stringify here and parse in the worker.
    wkb[i] = geometryWkb(r.geometry);
    total += wkb[i]!.length;
    offsets[i + 1] = total;
    types.add(geoParquetTypeName(r.geometry));
    const [a, b, c, d] = r.bbox;
    if (a < bbox[0]) bbox[0] = a;
    if (b < bbox[1]) bbox[1] = b;
    if (c > bbox[2]) bbox[2] = c;
    if (d > bbox[3]) bbox[3] = d;
  }
  const data = new Uint8Array(total);
  for (let i = 0; i < n; i++) data.set(wkb[i]!, offsets[i]!);
  return {
    kind: 'vector', length: n, id, dataset: dataset.column(), timeUs, source: source.column(), partition, offset,
    bbox, geometryTypes: [...types], variable: variable.column(), value: value.column(), properties, geometry: { data, offsets },
  };
}

/** The buffers of packed columns, to transfer (not copy) to a worker; the columns are unusable after. */
export function columnBuffers(columns: BatchColumns): ArrayBuffer[] {
  const arrays: (ArrayBufferView | undefined)[] = [
    columns.dataset.indices, columns.variable.indices, columns.source.indices, columns.timeUs, columns.partition, columns.offset,
    columns.value.values, columns.value.valid,
  ];
  if (columns.kind === 'point') {
    arrays.push(columns.unit.indices, columns.quality.indices, columns.station.indices, columns.elevation.values, columns.elevation.valid, columns.lon, columns.lat);
  } else {
    arrays.push(columns.geometry.data, columns.geometry.offsets);
  }
  return arrays.filter((a) => a !== undefined).map((a) => a.buffer as ArrayBuffer);
}

/** Per row, the rank of its value in string (UTF-16) order, nulls after every value: comparing ranks compares the strings. */
function ranks(column: DictColumn): Int32Array {
  const { values, indices } = column;
  // Dictionary values are distinct: no ties.
  const sorted = values.map((_, k) => k).sort((a, b) => (values[a]! < values[b]! ? -1 : 1));
  const rankOf = new Int32Array(values.length);
  sorted.forEach((k, rank) => (rankOf[k] = rank));
  const out = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) out[i] = indices[i]! < 0 ? values.length : rankOf[indices[i]!]!;
  return out;
}

/**
 * The order rows are stored in, as row indices: points by station, variable, then time; features
 * by time. Ties keep the source order (source, partition, offset, then batch order), so the same
 * records give the same bytes whatever the order they came in.
 *
 * A batch usually comes in source order with times ascending per station and variable: then two
 * stable counting sorts give the order in O(n), checked run by run, and only a run whose times
 * are not ascending is sorted. A comparison sort of 100k rows took ~8% of an encode
 * (benchmarks/RESULTS.md); any other batch still gets it.
 */
export function storageOrder(columns: BatchColumns): Int32Array {
  const n = columns.length;
  const { timeUs, partition, offset } = columns;
  const source = ranks(columns.source);
  const groups =
    columns.kind === 'point'
      ? { station: ranks(columns.station), stations: columns.station.values.length + 1, variable: ranks(columns.variable), variables: columns.variable.values.length + 1 }
      : undefined;
  if (inSourceOrder(source, partition, offset)) {
    const byTime = (a: number, b: number) => timeUs[a]! - timeUs[b]! || a - b;
    if (groups === undefined) return ascendingRuns(identity(n), undefined, timeUs, byTime);
    const { station, stations, variable, variables } = groups;
    const order = countingSort(countingSort(identity(n), variable, variables), station, stations);
    const group = new Float64Array(n);
    for (let i = 0; i < n; i++) group[i] = station[i]! * variables + variable[i]!;
    return ascendingRuns(order, group, timeUs, byTime);
  }
  const byPosition = (a: number, b: number) => source[a]! - source[b]! || partition[a]! - partition[b]! || offset[a]! - offset[b]! || a - b;
  const order = Array.from({ length: n }, (_, i) => i);
  if (groups !== undefined) {
    const { station, variable } = groups;
    order.sort((a, b) => station[a]! - station[b]! || variable[a]! - variable[b]! || timeUs[a]! - timeUs[b]! || byPosition(a, b));
  } else {
    order.sort((a, b) => timeUs[a]! - timeUs[b]! || byPosition(a, b));
  }
  return Int32Array.from(order);
}

function identity(n: number): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  return order;
}

/** Whether rows are in ascending (source, partition, offset) already: then row order breaks every tie. */
function inSourceOrder(source: Int32Array, partition: Float64Array, offset: Float64Array): boolean {
  for (let i = 1; i < source.length; i++) {
    const d = source[i]! - source[i - 1]! || partition[i]! - partition[i - 1]! || offset[i]! - offset[i - 1]!;
    if (d < 0) return false;
  }
  return true;
}

/** `order` stably sorted by `key` (integers in [0, keys)). */
function countingSort(order: Int32Array, key: Int32Array, keys: number): Int32Array {
  const starts = new Int32Array(keys + 1);
  for (let i = 0; i < order.length; i++) starts[key[order[i]!]! + 1]!++;
  for (let k = 0; k < keys; k++) starts[k + 1]! += starts[k]!;
  const out = new Int32Array(order.length);
  for (let i = 0; i < order.length; i++) out[starts[key[order[i]!]!]!++] = order[i]!;
  return out;
}

/** `order` with each run of rows of one `group` (all rows when there is none) sorted by `compare`, where its times are not ascending already. */
function ascendingRuns(order: Int32Array, group: Float64Array | undefined, timeUs: Float64Array, compare: (a: number, b: number) => number): Int32Array {
  let start = 0;
  let sorted = true;
  for (let i = 1; i <= order.length; i++) {
    if (i === order.length || (group !== undefined && group[order[i]!] !== group[order[start]!])) {
      if (!sorted) order.subarray(start, i).sort(compare);
      start = i;
      sorted = true;
    } else if (timeUs[order[i]!]! < timeUs[order[i - 1]!]!) sorted = false;
  }
  return order;
}

const geometryField = { 'ARROW:extension:name': 'geoarrow.wkb', 'ARROW:extension:metadata': '{}' };

/**
 * A batch as an Arrow table: the record's fields under their own names plus a WKB `geometry`.
 * Rows are in `storageOrder`, so the min/max statistics of each row group and page prune filters.
 */
export function columnsToTable(columns: BatchColumns, metadata?: Record<string, string>, drop: readonly string[] = []): Table {
  const order = storageOrder(columns);
  const specs = columns.kind === 'point' ? pointSpecs(columns, order) : vectorSpecs(columns, order);
  // Hive partition columns are in the object's path, not its file (as pyarrow and DuckDB write them).
  return tableOf(drop.length === 0 ? specs : specs.filter((s) => !drop.includes(s.name)), metadata);
}

function pointSpecs(c: PointColumns, order: Order): ColumnSpec[] {
  return [
    { name: 'id', vector: utf8Column(c.id, order), nullable: true },
    { name: 'dataset', vector: dictUtf8Column(c.dataset, order), nullable: false },
    { name: 'variable', vector: dictUtf8Column(c.variable, order), nullable: false },
    { name: 'time', vector: timestampUsColumn(c.timeUs, order), nullable: false },
    { name: 'value', vector: float64Column(c.value, order), nullable: false },
    { name: 'unit', vector: dictUtf8Column(c.unit, order), nullable: true },
    { name: 'quality', vector: dictUtf8Column(c.quality, order), nullable: true },
    { name: 'station', vector: dictUtf8Column(c.station, order), nullable: true },
    { name: 'elevation', vector: float64Column(c.elevation, order), nullable: true },
    { name: 'lon', vector: float64Column({ values: c.lon }, order), nullable: false },
    { name: 'lat', vector: float64Column({ values: c.lat }, order), nullable: false },
    { name: 'attrs', vector: utf8Column(c.attrs, order), nullable: true },
    { name: 'geometry', vector: pointWkbColumn(c.lon, c.lat, order), nullable: false, metadata: geometryField },
  ];
}

function vectorSpecs(c: VectorColumns, order: Order): ColumnSpec[] {
  return [
    { name: 'id', vector: utf8Column(c.id, order), nullable: true },
    { name: 'dataset', vector: dictUtf8Column(c.dataset, order), nullable: false },
    { name: 'variable', vector: dictUtf8Column(c.variable, order), nullable: true },
    { name: 'time', vector: timestampUsColumn(c.timeUs, order), nullable: false },
    { name: 'value', vector: float64Column(c.value, order), nullable: true },
    { name: 'properties', vector: utf8Column(c.properties, order), nullable: true },
    { name: 'geometry', vector: binaryColumn(c.geometry.data, c.geometry.offsets, order), nullable: false, metadata: geometryField },
  ];
}
