import type { RowColumns } from '../../core/batch.js';
import type { ObservationRecord, PointRecord } from '../../core/record.js';
import type { PointColumns } from './batch-table.js';
import { DictBuilder, NumberBuilder, type DictColumn } from './columns.js';

/**
 * A point batch's rows appended straight into columns as they are routed: typed arrays that
 * grow by doubling, low-cardinality strings as dictionary indices. The record objects die young
 * (they are never retained by the batch), so a batch's memory is its columns, ~60 bytes a point
 * against ~280 for the objects, and the garbage collector no longer copies and marks every open
 * record. `finish` gives exactly what `packBatch` gives for the same records in the same order,
 * so objects are byte-identical either way (test/unit/encoders/point-builder.test.ts).
 */
export class PointColumnsBuilder implements RowColumns {
  readonly kind = 'point';
  rows = 0;
  source = '';
  partition = 0;
  timeMinUs = Infinity;
  timeMaxUs = -Infinity;
  private capacity: number;
  private readonly id: (string | null)[] = [];
  private readonly attrs: (string | null)[] = [];
  private readonly dataset = new DictBuilder();
  private readonly variable = new DictBuilder();
  private readonly unit = new DictBuilder();
  private readonly quality = new DictBuilder();
  private readonly station = new DictBuilder();
  private offset: Float64Array;
  private size: Float64Array;
  private timeUs: Float64Array;
  private lon: Float64Array;
  private lat: Float64Array;
  private readonly value = new NumberBuilder();
  private readonly elevation = new NumberBuilder();
  private west = Infinity;
  private south = Infinity;
  private east = -Infinity;
  private north = -Infinity;

  constructor(capacity = 1024) {
    this.capacity = capacity;
    this.offset = new Float64Array(capacity);
    this.size = new Float64Array(capacity);
    this.timeUs = new Float64Array(capacity);
    this.lon = new Float64Array(capacity);
    this.lat = new Float64Array(capacity);
  }

  get bbox(): [number, number, number, number] {
    return [this.west, this.south, this.east, this.north];
  }

  append(record: ObservationRecord): void {
    const r = record as PointRecord;
    const i = this.rows;
    if (i === 0) {
      this.source = r.position.source;
      this.partition = r.position.partition;
    }
    if (i === this.capacity) this.grow();
    this.id.push(r.id ?? null);
    this.attrs.push(r.attrs ?? null);
    this.dataset.push(r.dataset);
    this.variable.push(r.variable);
    this.unit.push(r.unit);
    this.quality.push(r.quality);
    this.station.push(r.station);
    this.offset[i] = r.position.offset;
    this.size[i] = r.size;
    const t = r.timeUs;
    this.timeUs[i] = t;
    if (t < this.timeMinUs) this.timeMinUs = t;
    if (t > this.timeMaxUs) this.timeMaxUs = t;
    const { lon, lat } = r;
    this.lon[i] = lon;
    this.lat[i] = lat;
    if (lon < this.west) this.west = lon;
    if (lat < this.south) this.south = lat;
    if (lon > this.east) this.east = lon;
    if (lat > this.north) this.north = lat;
    this.value.push(r.value);
    this.elevation.push(r.elevation);
    this.rows = i + 1;
  }

  offsetAt(row: number): number {
    return this.offset[row]!;
  }

  sizeAt(row: number): number {
    return this.size[row]!;
  }

  ids(): readonly (string | null)[] {
    return this.id;
  }

  /** The columns, trimmed to the rows; what an encode worker is sent. */
  finish(): PointColumns {
    const n = this.rows;
    const source: DictColumn = { values: n === 0 ? [] : [this.source], indices: new Int32Array(n) };
    return {
      kind: 'point', length: n, id: this.id.slice(), dataset: this.dataset.column(n), timeUs: this.timeUs.slice(0, n), source,
      partition: new Float64Array(n).fill(this.partition), offset: this.offset.slice(0, n),
      bbox: this.bbox, geometryTypes: n === 0 ? [] : ['Point'],
      variable: this.variable.column(n), value: this.value.column(n), unit: this.unit.column(n), quality: this.quality.column(n),
      station: this.station.column(n), elevation: this.elevation.column(n), lon: this.lon.slice(0, n), lat: this.lat.slice(0, n),
      attrs: this.attrs.slice(),
    };
  }

  private grow(): void {
    const capacity = this.capacity * 2;
    const bigger = (a: Float64Array) => {
      const b = new Float64Array(capacity);
      b.set(a);
      return b;
    };
    this.offset = bigger(this.offset);
    this.size = bigger(this.size);
    this.timeUs = bigger(this.timeUs);
    this.lon = bigger(this.lon);
    this.lat = bigger(this.lat);
    this.capacity = capacity;
  }
}
