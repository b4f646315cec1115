import type { Table } from 'apache-arrow';
import type { PointRecord, VectorRecord } from '../../core/record.js';
import type { Batch } from '../../core/batch.js';
import { geometryWkb, pointWkb } from '../wkb.js';
import { binaryColumn, float64Column, tableOf, timestampUsColumn, utf8Column, type ColumnSpec } from './columns.js';

const geometryField = { 'ARROW:extension:name': 'geoarrow.wkb', 'ARROW:extension:metadata': '{}' };

/**
 * A batch as an Arrow table: the record's fields under their own names plus a WKB `geometry`.
 * Rows are in `storageOrder`, so the min/max statistics of each row group and page prune filters.
 */
export function batchToTable(batch: Batch, metadata?: Record<string, string>): Table {
  return batch.kind === 'point'
    ? pointTable(storageOrder(batch.records as PointRecord[]), metadata)
    : vectorTable(storageOrder(batch.records as VectorRecord[]), metadata);
}

const compareText = (a: string | null, b: string | null) => (a === b ? 0 : a === null ? 1 : b === null ? -1 : a < b ? -1 : 1);

/**
 * The order rows are stored in: points by station, variable, then time; features by time. Ties
 * keep the source order, so the same records give the same bytes whatever the order they came in.
 */
export function storageOrder<R extends PointRecord | VectorRecord>(records: readonly R[]): R[] {
  const byPosition = (a: R, b: R) =>
    compareText(a.position.source, b.position.source) || a.position.partition - b.position.partition || a.position.offset - b.position.offset;
  return [...records].sort((a, b) => {
    if (a.kind === 'point' && b.kind === 'point') {
      const c = compareText(a.station, b.station) || compareText(a.variable, b.variable) || a.timeUs - b.timeUs;
      if (c !== 0) return c;
    }
    return a.timeUs - b.timeUs || byPosition(a, b);
  });
}

function pointTable(records: readonly PointRecord[], metadata?: Record<string, string>): Table {
  const n = records.length;
  // One buffer for every WKB point (21 bytes each), sliced per row.
  const wkb = new Uint8Array(n * 21);
  const geometries: Uint8Array[] = new Array(n);
  for (let i = 0; i < n; i++) {
    pointWkb(records[i]!.lon, records[i]!.lat, wkb, i * 21);
    geometries[i] = wkb.subarray(i * 21, i * 21 + 21);
  }
  const columns: ColumnSpec[] = [
    { name: 'id', vector: utf8Column(records.map((r) => r.id)), nullable: true },
    { name: 'dataset', vector: utf8Column(records.map((r) => r.dataset)), nullable: false },
    { name: 'variable', vector: utf8Column(records.map((r) => r.variable)), nullable: false },
    { name: 'time', vector: timestampUsColumn(records.map((r) => r.timeUs)), nullable: false },
    { name: 'value', vector: float64Column(records.map((r) => r.value)), nullable: false },
    { name: 'unit', vector: utf8Column(records.map((r) => r.unit)), nullable: true },
    { name: 'quality', vector: utf8Column(records.map((r) => r.quality)), nullable: true },
    { name: 'station', vector: utf8Column(records.map((r) => r.station)), nullable: true },
    { name: 'elevation', vector: float64Column(records.map((r) => r.elevation)), nullable: true },
    { name: 'lon', vector: float64Column(records.map((r) => r.lon)), nullable: false },
    { name: 'lat', vector: float64Column(records.map((r) => r.lat)), nullable: false },
    { name: 'attrs', vector: utf8Column(records.map((r) => r.attrs)), nullable: true },
    { name: 'geometry', vector: binaryColumn(geometries), nullable: false, metadata: geometryField },
  ];
  return tableOf(columns, metadata);
}

function vectorTable(records: readonly VectorRecord[], metadata?: Record<string, string>): Table {
  const columns: ColumnSpec[] = [
    { name: 'id', vector: utf8Column(records.map((r) => r.id)), nullable: true },
    { name: 'dataset', vector: utf8Column(records.map((r) => r.dataset)), nullable: false },
    { name: 'variable', vector: utf8Column(records.map((r) => r.variable)), nullable: true },
    { name: 'time', vector: timestampUsColumn(records.map((r) => r.timeUs)), nullable: false },
    { name: 'value', vector: float64Column(records.map((r) => r.value)), nullable: true },
    { name: 'properties', vector: utf8Column(records.map((r) => r.properties)), nullable: true },
    { name: 'geometry', vector: binaryColumn(records.map((r) => geometryWkb(r.geometry))), nullable: false, metadata: geometryField },
  ];
  return tableOf(columns, metadata);
}
