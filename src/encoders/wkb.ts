import type { GeoJsonGeometry } from '../core/record.js';

/** OGC Well-Known Binary, little endian, from GeoJSON geometries; Z kept when every position has it. */
const typeCodes: Record<GeoJsonGeometry['type'], number> = {
  Point: 1, LineString: 2, Polygon: 3, MultiPoint: 4, MultiLineString: 5, MultiPolygon: 6,
};

/** A 2D WKB point (21 bytes) at `offset` of `view`. */
export function pointWkb(view: DataView, offset: number, lon: number, lat: number): void {
  view.setUint8(offset, 1);
  view.setUint32(offset + 1, 1, true);
  view.setFloat64(offset + 5, lon, true);
  view.setFloat64(offset + 13, lat, true);
}

export function hasZ(geometry: GeoJsonGeometry): boolean {
  let all = true;
  const visit = (value: unknown, depth: number): void => {
    if (!all) return;
    if (depth === 0) {
      if ((value as number[]).length < 3) all = false;
      return;
    }
    for (const item of value as unknown[]) visit(item, depth - 1);
  };
  visit(geometry.coordinates, depthOf(geometry.type));
  return all;
}

function depthOf(type: GeoJsonGeometry['type']): number {
  return { Point: 0, MultiPoint: 1, LineString: 1, MultiLineString: 2, Polygon: 2, MultiPolygon: 3 }[type];
}

export function geometryWkb(geometry: GeoJsonGeometry): Uint8Array {
  const z = hasZ(geometry);
  const dims = z ? 3 : 2;
  const bytes: Uint8Array[] = [];
  let size = 0;
  const header = (type: number, count?: number) => {
    const b = new Uint8Array(count === undefined ? 5 : 9);
    const v = new DataView(b.buffer);
    v.setUint8(0, 1);
    v.setUint32(1, type + (z ? 1000 : 0), true);
    if (count !== undefined) v.setUint32(5, count, true);
    bytes.push(b);
    size += b.length;
  };
  const count = (n: number) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n, true);
    bytes.push(b);
    size += 4;
  };
  const position = (p: number[]) => {
    const b = new Uint8Array(8 * dims);
    const v = new DataView(b.buffer);
    for (let i = 0; i < dims; i++) v.setFloat64(i * 8, p[i]!, true);
    bytes.push(b);
    size += b.length;
  };
  const ring = (ps: number[][]) => {
    count(ps.length);
    ps.forEach(position);
  };
  const polygon = (rings: number[][][]) => {
    count(rings.length);
    rings.forEach(ring);
  };
  switch (geometry.type) {
    case 'Point':
      header(1);
      position(geometry.coordinates);
      break;
    case 'LineString':
      header(2);
      ring(geometry.coordinates);
      break;
    case 'Polygon':
      header(3);
      polygon(geometry.coordinates);
      break;
    case 'MultiPoint':
      header(4, geometry.coordinates.length);
      for (const p of geometry.coordinates) {
        header(1);
        position(p);
      }
      break;
    case 'MultiLineString':
      header(5, geometry.coordinates.length);
      for (const l of geometry.coordinates) {
        header(2);
        ring(l);
      }
      break;
    case 'MultiPolygon':
      header(6, geometry.coordinates.length);
      for (const p of geometry.coordinates) {
        header(3);
        polygon(p);
      }
      break;
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const b of bytes) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

export function geoParquetTypeName(geometry: GeoJsonGeometry): string {
  return hasZ(geometry) ? `${geometry.type} Z` : geometry.type;
}

export { typeCodes as wkbTypeCodes };

/** WKB (either byte order, 2D or Z, ISO `+1000` or EWKB Z flag) back to a GeoJSON geometry. */
export function wkbGeometry(wkb: Uint8Array): GeoJsonGeometry {
  const view = new DataView(wkb.buffer, wkb.byteOffset, wkb.byteLength);
  let at = 0;
  const read = (): { type: GeoJsonGeometry['type']; coordinates: unknown } => {
    const little = view.getUint8(at) === 1;
    const raw = view.getUint32(at + 1, little);
    at += 5;
    const z = raw >= 1000 && raw < 2000 ? true : (raw & 0x80000000) !== 0;
    const code = (raw & 0x0fffffff) % 1000;
    const type = (Object.keys(typeCodes) as GeoJsonGeometry['type'][]).find((t) => typeCodes[t] === code);
    if (type === undefined) throw new Error(`WKB geometry type ${raw} is not one of Point … MultiPolygon`);
    const u32 = () => ((at += 4), view.getUint32(at - 4, little));
    const position = () => {
      const p = [view.getFloat64(at, little), view.getFloat64(at + 8, little)];
      if (z) p.push(view.getFloat64(at + 16, little));
      at += z ? 24 : 16;
      return p;
    };
    const positions = () => Array.from({ length: u32() }, position);
    const rings = () => Array.from({ length: u32() }, positions);
    switch (type) {
      case 'Point': return { type, coordinates: position() };
      case 'LineString': return { type, coordinates: positions() };
      case 'Polygon': return { type, coordinates: rings() };
      default: return { type, coordinates: Array.from({ length: u32() }, () => read().coordinates) };
    }
  };
  return read() as GeoJsonGeometry;
}
