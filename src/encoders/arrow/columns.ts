import {
  Binary, Field, Float64, makeData, makeVector, RecordBatch, Schema, Struct, Table, TimestampMicrosecond, Utf8, type Vector,
} from 'apache-arrow';
import { pointWkb } from '../wkb.js';

/**
 * Hand-built Arrow columns: typed arrays straight into `makeData`, no per-value builder calls
 * (`tableFromJSON` measured 5–8× slower on this workload). Each takes the row `order` (storage
 * order, as indices into the packed column) and writes rows in that order.
 */
const encoder = new TextEncoder();

/** Distinct strings, and per row the index of its value (-1: null). */
export interface DictColumn {
  values: string[];
  indices: Int32Array;
}

/** Numbers; `valid[i] === 0` marks a null. Without `valid` there are none. */
export interface NumberColumn {
  values: Float64Array;
  valid?: Uint8Array;
}

export type Order = ArrayLike<number>;

/** A nullable number column built row by row; `valid` is allocated at the first null. Grows as rows come. */
export class NumberBuilder {
  private values: Float64Array;
  private valid: Uint8Array | undefined;
  private length = 0;

  constructor(capacity = 1024) {
    this.values = new Float64Array(Math.max(1, capacity));
  }

  push(value: number | null | undefined): void {
    if (this.length === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2);
      bigger.set(this.values);
      this.values = bigger;
      if (this.valid !== undefined) {
        const valid = new Uint8Array(bigger.length).fill(1);
        valid.set(this.valid);
        this.valid = valid;
      }
    }
    if (value === null || value === undefined) {
      this.valid ??= new Uint8Array(this.values.length).fill(1);
      this.valid[this.length] = 0;
    } else this.values[this.length] = value;
    this.length++;
  }

  /** The first `n` rows' column. */
  column(n = this.length): NumberColumn {
    const values = this.values.slice(0, n);
    return this.valid === undefined ? { values } : { values, valid: this.valid.slice(0, n) };
  }
}

/** A dictionary column built row by row: indices in first-seen order, -1 for null; grows as rows come. */
export class DictBuilder {
  private readonly index = new Map<string, number>();
  private readonly values: string[] = [];
  private indices: Int32Array;
  private length = 0;

  constructor(capacity = 1024) {
    this.indices = new Int32Array(Math.max(1, capacity));
  }

  push(value: string | null | undefined): void {
    if (this.length === this.indices.length) {
      const bigger = new Int32Array(this.indices.length * 2);
      bigger.set(this.indices);
      this.indices = bigger;
    }
    if (value === null || value === undefined) {
      this.indices[this.length++] = -1;
      return;
    }
    let k = this.index.get(value);
    if (k === undefined) {
      k = this.values.length;
      this.values.push(value);
      this.index.set(value, k);
    }
    this.indices[this.length++] = k;
  }

  /** The first `n` rows' column. */
  column(n = this.length): DictColumn {
    return { values: this.values.slice(), indices: this.indices.slice(0, n) };
  }
}

function bitmap(isValid: (i: number) => boolean, length: number): Uint8Array {
  const bits = new Uint8Array((length + 7) >> 3);
  for (let i = 0; i < length; i++) if (isValid(i)) bits[i >> 3]! |= 1 << (i & 7);
  return bits;
}

export function utf8Column(values: readonly (string | null)[], order: Order): Vector<Utf8> {
  const length = order.length;
  const offsets = new Int32Array(length + 1);
  const ordered: string[] = new Array(length);
  let nulls = 0;
  let chars = 0;
  for (let i = 0; i < length; i++) {
    const v = values[order[i]!];
    if (v === null) nulls++;
    else if (v !== undefined) chars += v.length;
    ordered[i] = v ?? '';
    offsets[i + 1] = chars;
  }
  // Ids are mostly ASCII: then the strings encode as one (one native call, not one per row) and
  // their char offsets are their byte offsets. Any other char takes more bytes than chars.
  let data: Uint8Array = Buffer.from(ordered.join(''), 'utf8');
  if (data.length !== chars) {
    // Written through a Buffer at each offset: encodeInto needed a view per row to do that.
    const buffer = Buffer.alloc(Math.max(chars * 3, 1));
    let at = 0;
    for (let i = 0; i < length; i++) {
      if (ordered[i]!.length > 0) at += buffer.write(ordered[i]!, at);
      offsets[i + 1] = at;
    }
    data = buffer.subarray(0, at);
  }
  const nullBitmap = nulls === 0 ? undefined : bitmap((i) => values[order[i]!] !== null, length);
  return makeVector(makeData({ type: new Utf8(), length, nullCount: nulls, nullBitmap, valueOffsets: offsets, data: new Uint8Array(data.buffer, data.byteOffset, data.length) }));
}

/** The same column as `utf8Column` gives for the expanded strings; each distinct value is encoded once. */
export function dictUtf8Column(column: DictColumn, order: Order): Vector<Utf8> {
  const length = order.length;
  const { values, indices } = column;
  // The distinct values' UTF-8, back to back; value k is dict[starts[k] … starts[k + 1]].
  const starts = new Int32Array(values.length + 1);
  const dict = new Uint8Array(values.reduce((n, v) => n + v.length * 3, 0));
  for (let k = 0; k < values.length; k++) starts[k + 1] = starts[k]! + encoder.encodeInto(values[k]!, dict.subarray(starts[k]!)).written;
  const offsets = new Int32Array(length + 1);
  let nulls = 0;
  let total = 0;
  for (let i = 0; i < length; i++) {
    const k = indices[order[i]!]!;
    if (k < 0) nulls++;
    else total += starts[k + 1]! - starts[k]!;
    offsets[i + 1] = total;
  }
  const data = new Uint8Array(total);
  for (let i = 0, at = 0; i < length; i++) {
    const k = indices[order[i]!]!;
    if (k < 0) continue;
    // Labels are a few bytes: a loop beats `set` (a native call per row).
    for (let j = starts[k]!, end = starts[k + 1]!; j < end; j++) data[at++] = dict[j]!;
  }
  const nullBitmap = nulls === 0 ? undefined : bitmap((i) => indices[order[i]!]! >= 0, length);
  return makeVector(makeData({ type: new Utf8(), length, nullCount: nulls, nullBitmap, valueOffsets: offsets, data }));
}

export function float64Column(column: NumberColumn, order: Order): Vector<Float64> {
  const length = order.length;
  const data = new Float64Array(length);
  const { values, valid } = column;
  let nulls = 0;
  for (let i = 0; i < length; i++) {
    const j = order[i]!;
    // A null slot stays 0.
    if (valid !== undefined && valid[j] === 0) nulls++;
    else data[i] = values[j]!;
  }
  const nullBitmap = nulls === 0 ? undefined : bitmap((i) => valid![order[i]!] !== 0, length);
  return makeVector(makeData({ type: new Float64(), length, nullCount: nulls, nullBitmap, data }));
}

/** Which of an int64's two 32-bit words comes first in memory on this platform. */
const LOW_WORD = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1 ? 0 : 1;

/** Microsecond times: integers, exact in a double up to 2^53 µs (year 287 396). */
export function timestampUsColumn(values: Float64Array, order: Order): Vector<TimestampMicrosecond> {
  const length = order.length;
  const data = new BigInt64Array(length);
  // Each int64 written as two 32-bit words: a BigInt per row was most of this column's time.
  const words = new Uint32Array(data.buffer);
  for (let i = 0; i < length; i++) {
    const us = values[order[i]!]!;
    if (!Number.isSafeInteger(us)) throw new RangeError(`time ${us} µs is not an integer in ±2^53`);
    const high = Math.floor(us / 2 ** 32);
    words[2 * i + LOW_WORD] = us - high * 2 ** 32;
    words[2 * i + 1 - LOW_WORD] = high;
  }
  return makeVector(makeData({ type: new TimestampMicrosecond('UTC'), length, nullCount: 0, data }));
}

/** Rows of binary values given as one buffer and `length + 1` offsets into it. */
export function binaryColumn(source: Uint8Array, sourceOffsets: Int32Array, order: Order): Vector<Binary> {
  const length = order.length;
  const offsets = new Int32Array(length + 1);
  let total = 0;
  for (let i = 0; i < length; i++) {
    const j = order[i]!;
    total += sourceOffsets[j + 1]! - sourceOffsets[j]!;
    offsets[i + 1] = total;
  }
  const data = new Uint8Array(total);
  for (let i = 0; i < length; i++) {
    const j = order[i]!;
    data.set(source.subarray(sourceOffsets[j]!, sourceOffsets[j + 1]!), offsets[i]!);
  }
  return makeVector(makeData({ type: new Binary(), length, nullCount: 0, valueOffsets: offsets, data }));
}

/** WKB points (21 bytes each) from lon/lat columns. */
export function pointWkbColumn(lon: Float64Array, lat: Float64Array, order: Order): Vector<Binary> {
  const length = order.length;
  const data = new Uint8Array(length * 21);
  const view = new DataView(data.buffer);
  const offsets = new Int32Array(length + 1);
  for (let i = 0; i < length; i++) {
    const j = order[i]!;
    pointWkb(view, i * 21, lon[j]!, lat[j]!);
    offsets[i + 1] = (i + 1) * 21;
  }
  return makeVector(makeData({ type: new Binary(), length, nullCount: 0, valueOffsets: offsets, data }));
}

export interface ColumnSpec {
  name: string;
  vector: Vector;
  nullable: boolean;
  metadata?: Record<string, string>;
}

export function tableOf(columns: readonly ColumnSpec[], metadata?: Record<string, string>): Table {
  const fields = columns.map(
    (c) => new Field(c.name, c.vector.type, c.nullable, c.metadata ? new Map(Object.entries(c.metadata)) : undefined),
  );
  const schema = new Schema(fields, metadata ? new Map(Object.entries(metadata)) : undefined);
  const data = makeData({
    type: new Struct(fields),
    length: columns[0]?.vector.length ?? 0,
    nullCount: 0,
    children: columns.map((c) => c.vector.data[0]!),
  });
  return new Table(schema, [new RecordBatch(schema, data)]);
}
