import { tableFromIPC, type Table } from 'apache-arrow';
import { createRequire } from 'node:module';
import type * as ParquetWasm from 'parquet-wasm/node';
import { EncodeError } from '../../core/errors.js';
import type { GeoJsonGeometry, ObservationRecord, SourcePosition } from '../../core/record.js';
import { wkbGeometry } from '../wkb.js';

const parquet = createRequire(import.meta.url)('parquet-wasm/node') as typeof ParquetWasm;

/** The records of a GeoParquet object and its column names, in stored order. */
export interface DecodedObject {
  records: ObservationRecord[];
  columns: string[];
}

/**
 * Reads back what GeoParquetEncoder wrote: the same records (ids, values, times, geometries), so
 * an object can be re-encoded for another tier or checked on its content. Source positions are
 * not stored in the file: each record's `position` is `base` with its row index as the offset.
 */
export function decodeGeoParquet(bytes: Uint8Array, base: Omit<SourcePosition, 'offset'>): DecodedObject {
  let table: Table;
  try {
    table = tableFromIPC(parquet.readParquet(bytes).intoIPCStream());
  } catch (cause) {
    throw new EncodeError('not a readable Parquet file', { cause, context: { stage: 'decode' } });
  }
  const columns = table.schema.fields.map((f) => f.name);
  const col = (name: string) => {
    const vector = table.getChild(name);
    if (vector === null) throw new EncodeError(`Parquet object has no ${name} column`, { context: { stage: 'decode' } });
    return vector;
  };
  const opt = (name: string) => table.getChild(name);
  const text = (v: unknown) => (v === null || v === undefined ? null : String(v));
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  const n = table.numRows;
  const ids = col('id'), datasets = col('dataset'), variables = col('variable'), times = col('time'), values = col('value'), geometries = col('geometry');
  // Arrow JS reads TIMESTAMP(MICROS) back as fractional milliseconds: take the stored int64 µs instead.
  const timeUs = new Array<number>(n);
  let row = 0;
  for (const chunk of times.data) {
    const values = chunk.values as BigInt64Array;
    for (let i = 0; i < chunk.length; i++) timeUs[row++] = Number(values[chunk.offset + i]);
  }
  const records: ObservationRecord[] = new Array(n);
  const isPoint = opt('lon') !== null;
  const [lons, lats, units, qualities, stations, elevations, attrs, properties] = ['lon', 'lat', 'unit', 'quality', 'station', 'elevation', 'attrs', 'properties'].map(opt);
  for (let i = 0; i < n; i++) {
    const position = { ...base, offset: i };
    const common = {
      position,
      size: 0,
      id: text(ids.get(i)),
      dataset: String(datasets.get(i)),
      timeUs: timeUs[i]!,
    };
    if (isPoint) {
      records[i] = {
        ...common,
        kind: 'point',
        variable: String(variables.get(i)),
        value: Number(values.get(i)),
        lon: Number(lons!.get(i)),
        lat: Number(lats!.get(i)),
        unit: text(units?.get(i)),
        quality: text(qualities?.get(i)),
        station: text(stations?.get(i)),
        elevation: num(elevations?.get(i)),
        attrs: text(attrs?.get(i)),
      };
    } else {
      const geometry = wkbGeometry(geometries.get(i) as Uint8Array);
      records[i] = {
        ...common,
        kind: 'vector',
        variable: text(variables.get(i)),
        value: num(values.get(i)),
        properties: text(properties?.get(i)),
        geometry,
        bbox: geometryBbox(geometry),
      };
    }
  }
  return { records, columns };
}

function geometryBbox(geometry: GeoJsonGeometry): [number, number, number, number] {
  const box: [number, number, number, number] = [Infinity, Infinity, -Infinity, -Infinity];
  const visit = (c: unknown): void => {
    if (typeof (c as number[])[0] === 'number') {
      const [x, y] = c as number[];
      if (x! < box[0]) box[0] = x!;
      if (y! < box[1]) box[1] = y!;
      if (x! > box[2]) box[2] = x!;
      if (y! > box[3]) box[3] = y!;
    } else for (const item of c as unknown[]) visit(item);
  };
  visit(geometry.coordinates);
  return box;
}
