import { tableFromIPC, type Table, type Vector } from 'apache-arrow';
import { createRequire } from 'node:module';
import type * as ParquetWasm from 'parquet-wasm/node';
import { EncodeError } from '../../core/errors.js';
import type { GeoJsonGeometry, ObservationRecord, SourcePosition } from '../../core/record.js';
import { wkbGeometry } from '../wkb.js';
import type { DecodedObject } from '../encoder.js';

const parquet = createRequire(import.meta.url)('parquet-wasm/node') as typeof ParquetWasm;


/**
 * Reads back what GeoParquetEncoder wrote: the same records (ids, values, times, geometries), so
 * an object can be re-encoded for another tier or checked on its content. Source positions are
 * not stored in the file: each record's `position` is `base` with its row index as the offset.
 */
export function decodeGeoParquet(bytes: Uint8Array, base: Omit<SourcePosition, 'offset'>, partition: ReadonlyMap<string, string | null> = new Map()): DecodedObject {
  let table: Table;
  try {
    table = tableFromIPC(parquet.readParquet(bytes).intoIPCStream());
  } catch (cause) {
    throw new EncodeError('not a readable Parquet file', { cause, context: { stage: 'decode' } });
  }
  const schema = table.schema.fields.map((f) => f.name);
  // A Hive partition column is not in the file: every row has its path's value.
  const fromPath = (name: string): (string | null)[] | undefined => (partition.has(name) ? new Array<string | null>(table.numRows).fill(partition.get(name)!) : undefined);
  const col = (name: string) => {
    const vector = table.getChild(name);
    if (vector === null) throw new EncodeError(`Parquet object has no ${name} column`, { context: { stage: 'decode' } });
    return vector;
  };
  const opt = (name: string) => table.getChild(name);
  const n = table.numRows;
  // Whole columns at once from the Arrow buffers (Vector.get per value decodes UTF-8 per call and
  // measured ~20 µs per record); repeated strings (dataset, variable, unit, station) are shared.
  const text = (vector: Vector | null, shared = true): (string | null)[] => (vector === null ? new Array<null>(n).fill(null) : utf8Values(vector, n, shared));
  const numbers = (vector: Vector | null): (number | null)[] => (vector === null ? new Array<null>(n).fill(null) : float64Values(vector, n));
  const ids = text(col('id'), false), values = numbers(col('value'));
  const datasets = fromPath('dataset') ?? text(col('dataset')), variables = fromPath('variable') ?? text(col('variable'));
  const timeUs = int64Values(col('time'), n);
  const isPoint = opt('lon') !== null;
  const records: ObservationRecord[] = new Array(n);
  if (isPoint) {
    const [lons, lats, elevations] = [opt('lon'), opt('lat'), opt('elevation')].map(numbers);
    const [units, qualities] = [opt('unit'), opt('quality')].map((v) => text(v));
    const stations = fromPath('station') ?? text(opt('station'));
    const attrs = text(opt('attrs'), false);
    for (let i = 0; i < n; i++) {
      records[i] = {
        kind: 'point', position: { ...base, offset: i }, size: 0, id: ids[i]!, dataset: datasets[i]!, variable: variables[i]!, timeUs: timeUs[i]!,
        value: values[i]!, lon: lons![i]!, lat: lats![i]!, unit: units![i]!, quality: qualities![i]!, station: stations![i]!,
        elevation: elevations![i]!, attrs: attrs![i]!,
      };
    }
  } else {
    const geometries = col('geometry');
    const properties = text(opt('properties'), false);
    for (let i = 0; i < n; i++) {
      const geometry = wkbGeometry(geometries.get(i) as Uint8Array);
      records[i] = {
        kind: 'vector', position: { ...base, offset: i }, size: 0, id: ids[i]!, dataset: datasets[i]!, variable: variables[i]!, timeUs: timeUs[i]!,
        value: values[i]!, properties: properties[i]!, geometry, bbox: geometryBbox(geometry),
      };
    }
  }
  return { records, schema };
}

const isValid = (bitmap: Uint8Array | undefined, i: number) => bitmap === undefined || bitmap.length === 0 || (bitmap[i >> 3]! & (1 << (i & 7))) !== 0;

function utf8Values(vector: Vector, n: number, share: boolean): (string | null)[] {
  const out = new Array<string | null>(n);
  const shared = new Map<string, string>();
  let row = 0;
  for (const chunk of vector.data) {
    const offsets = chunk.valueOffsets as Int32Array;
    const bytes = Buffer.from(chunk.values.buffer, chunk.values.byteOffset, chunk.values.byteLength);
    for (let i = 0; i < chunk.length; i++) {
      const at = chunk.offset + i;
      if (!isValid(chunk.nullBitmap, at)) {
        out[row++] = null;
        continue;
      }
      const value = bytes.toString('utf8', offsets[at]!, offsets[at + 1]!);
      if (!share || value.length > 32) out[row++] = value;
      else {
        const known = shared.get(value);
        if (known === undefined) shared.set(value, value);
        out[row++] = known ?? value;
      }
    }
  }
  return out;
}

function float64Values(vector: Vector, n: number): (number | null)[] {
  const out = new Array<number | null>(n);
  let row = 0;
  for (const chunk of vector.data) {
    const values = chunk.values as Float64Array;
    for (let i = 0; i < chunk.length; i++) out[row++] = isValid(chunk.nullBitmap, chunk.offset + i) ? values[chunk.offset + i]! : null;
  }
  return out;
}

/** TIMESTAMP(MICROS) as stored (Arrow JS's `get` gives fractional milliseconds). */
function int64Values(vector: Vector, n: number): number[] {
  const out = new Array<number>(n);
  let row = 0;
  for (const chunk of vector.data) {
    const values = chunk.values as BigInt64Array;
    for (let i = 0; i < chunk.length; i++) out[row++] = Number(values[chunk.offset + i]);
  }
  return out;
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
