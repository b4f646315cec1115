/**
 * Just enough of Thrift's compact protocol to edit Parquet metadata: a struct is read into its
 * fields in order, with their wire types, and written back byte for byte as it was unless a
 * field was changed. Field meanings are the caller's (parquet.thrift field ids).
 */

export const enum T {
  BoolTrue = 1,
  BoolFalse = 2,
  I8 = 3,
  I16 = 4,
  I32 = 5,
  I64 = 6,
  Double = 7,
  Binary = 8,
  List = 9,
  Set = 10,
  Map = 11,
  Struct = 12,
}

/** i64 as bigint, double as its 8 raw bytes, a bool inside a list as its wire byte. */
export type Value = boolean | number | bigint | Uint8Array | ThriftList | ThriftMap | ThriftStruct;
export interface ThriftList {
  elementType: number;
  items: Value[];
}
export interface ThriftMap {
  keyType: number;
  valueType: number;
  entries: [Value, Value][];
}
export interface Field {
  id: number;
  type: number;
  value: Value;
}

export class ThriftStruct {
  constructor(readonly fields: Field[] = []) {}

  get(id: number): Value | undefined {
    return this.fields.find((f) => f.id === id)?.value;
  }
  has(id: number): boolean {
    return this.fields.some((f) => f.id === id);
  }
  i32(id: number): number {
    return expect(this.get(id), 'number', id) as number;
  }
  i64(id: number): number {
    return Number(expect(this.get(id), 'bigint', id));
  }
  struct(id: number): ThriftStruct {
    const v = this.get(id);
    if (!(v instanceof ThriftStruct)) throw new Error(`thrift field ${id} is not a struct`);
    return v;
  }
  list(id: number): Value[] {
    const v = this.get(id);
    if (typeof v !== 'object' || !('items' in v)) throw new Error(`thrift field ${id} is not a list`);
    return v.items;
  }
  /** Replaces an existing field's value, keeping its position and wire type (so its JS type). */
  set(id: number, value: number | bigint): void {
    const field = this.fields.find((f) => f.id === id);
    if (field === undefined) throw new Error(`thrift field ${id} is not set`);
    if (typeof field.value !== typeof value) throw new Error(`thrift field ${id} is ${typeof field.value}, not ${typeof value}`);
    field.value = value;
  }
}

function expect(v: Value | undefined, type: 'number' | 'bigint', id: number): Value {
  if (typeof v !== type) throw new Error(`thrift field ${id} is ${v === undefined ? 'missing' : typeof v}, expected ${type}`);
  return v!;
}

export class ThriftReader {
  constructor(
    private readonly bytes: Uint8Array,
    public pos: number,
  ) {}

  private byte(): number {
    if (this.pos >= this.bytes.length) throw new Error('thrift: unexpected end of data');
    return this.bytes[this.pos++]!;
  }
  private uvarint(): bigint {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const b = this.byte();
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return result;
      if (shift > 63n) throw new Error('thrift: varint too long');
    }
  }
  private zigzag(): bigint {
    const n = this.uvarint();
    return (n >> 1n) ^ -(n & 1n);
  }
  private take(n: number): Uint8Array {
    if (this.pos + n > this.bytes.length) throw new Error('thrift: unexpected end of data');
    return this.bytes.slice(this.pos, (this.pos += n));
  }

  struct(): ThriftStruct {
    const fields: Field[] = [];
    let last = 0;
    for (;;) {
      const head = this.byte();
      const type = head & 0x0f;
      if (type === 0) return new ThriftStruct(fields);
      const delta = head >> 4;
      const id = delta === 0 ? Number(this.zigzag()) : last + delta;
      last = id;
      const value = type === T.BoolTrue || type === T.BoolFalse ? type === T.BoolTrue : this.value(type);
      fields.push({ id, type, value });
    }
  }

  private value(type: number): Value {
    switch (type) {
      case T.BoolTrue:
      case T.BoolFalse:
      case T.I8:
        return this.byte();
      case T.I16:
      case T.I32:
        return Number(this.zigzag());
      case T.I64:
        return BigInt.asIntN(64, this.zigzag());
      case T.Double:
        return this.take(8);
      case T.Binary:
        return this.take(Number(this.uvarint()));
      case T.List:
      case T.Set: {
        const head = this.byte();
        const size = head >> 4 === 15 ? Number(this.uvarint()) : head >> 4;
        const elementType = head & 0x0f;
        const items = Array.from({ length: size }, () => this.value(elementType));
        return { elementType, items };
      }
      case T.Map: {
        const size = Number(this.uvarint());
        const kv = size === 0 ? 0 : this.byte();
        const entries = Array.from({ length: size }, (): [Value, Value] => [this.value(kv >> 4), this.value(kv & 0x0f)]);
        return { keyType: kv >> 4, valueType: kv & 0x0f, entries };
      }
      case T.Struct:
        return this.struct();
      default:
        throw new Error(`thrift: unknown type ${type}`);
    }
  }
}

export class ThriftWriter {
  private buf = new Uint8Array(1024);
  private len = 0;

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  private byte(b: number): void {
    if (this.len === this.buf.length) {
      const grown = new Uint8Array(this.buf.length * 2);
      grown.set(this.buf);
      this.buf = grown;
    }
    this.buf[this.len++] = b;
  }
  private raw(bytes: Uint8Array): void {
    for (const b of bytes) this.byte(b);
  }
  private uvarint(n: bigint): void {
    while (n >= 0x80n) {
      this.byte(Number(n & 0x7fn) | 0x80);
      n >>= 7n;
    }
    this.byte(Number(n));
  }
  private zigzag(n: bigint): void {
    this.uvarint(BigInt.asUintN(64, (n << 1n) ^ (n >> 63n)));
  }

  struct(s: ThriftStruct): this {
    let last = 0;
    for (const { id, type, value } of s.fields) {
      const wire = type === T.BoolTrue || type === T.BoolFalse ? (value ? T.BoolTrue : T.BoolFalse) : type;
      if (id > last && id - last <= 15) this.byte(((id - last) << 4) | wire);
      else {
        this.byte(wire);
        this.zigzag(BigInt(id));
      }
      last = id;
      if (wire !== T.BoolTrue && wire !== T.BoolFalse) this.value(type, value);
    }
    this.byte(0);
    return this;
  }

  private value(type: number, v: Value): void {
    switch (type) {
      case T.BoolTrue:
      case T.BoolFalse:
      case T.I8:
        return this.byte(v as number);
      case T.I16:
      case T.I32:
        return this.zigzag(BigInt(v as number));
      case T.I64:
        return this.zigzag(v as bigint);
      case T.Double:
        return this.raw(v as Uint8Array);
      case T.Binary:
        this.uvarint(BigInt((v as Uint8Array).length));
        return this.raw(v as Uint8Array);
      case T.List:
      case T.Set: {
        const { elementType, items } = v as ThriftList;
        if (items.length < 15) this.byte((items.length << 4) | elementType);
        else {
          this.byte(0xf0 | elementType);
          this.uvarint(BigInt(items.length));
        }
        for (const item of items) this.value(elementType, item);
        return;
      }
      case T.Map: {
        const { keyType, valueType, entries } = v as ThriftMap;
        this.uvarint(BigInt(entries.length));
        if (entries.length > 0) this.byte((keyType << 4) | valueType);
        for (const [k, val] of entries) {
          this.value(keyType, k);
          this.value(valueType, val);
        }
        return;
      }
      case T.Struct:
        this.struct(v as ThriftStruct);
        return;
      default:
        throw new Error(`thrift: unknown type ${type}`);
    }
  }
}

export function encodeStruct(s: ThriftStruct): Uint8Array {
  return new ThriftWriter().struct(s).bytes();
}
