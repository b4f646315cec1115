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

/** Bytes of one geometry's WKB, so it is written into one buffer (small parts measured ~10 µs a polygon). */
function wkbSize(geometry: GeoJsonGeometry, dims: number): number {
  const positions = (ps: number[][]) => 4 + ps.length * 8 * dims;
  const polygon = (rings: number[][][]) => rings.reduce((n, r) => n + positions(r), 4);
  switch (geometry.type) {
    case 'Point': return 5 + 8 * dims;
    case 'LineString': return 5 + positions(geometry.coordinates);
    case 'Polygon': return 5 + polygon(geometry.coordinates);
    case 'MultiPoint': return 9 + geometry.coordinates.length * (5 + 8 * dims);
    case 'MultiLineString': return geometry.coordinates.reduce((n, l) => n + 5 + positions(l), 9);
    case 'MultiPolygon': return geometry.coordinates.reduce((n, p) => n + 5 + polygon(p), 9);
  }
}

export function geometryWkb(geometry: GeoJsonGeometry): Uint8Array {
  const z = hasZ(geometry);
  const dims = z ? 3 : 2;
  const out = new Uint8Array(wkbSize(geometry, dims));
  const view = new DataView(out.buffer);
  let at = 0;
  const header = (type: number, count?: number) => {
    view.setUint8(at, 1);
    view.setUint32(at + 1, type + (z ? 1000 : 0), true);
    at += 5;
    if (count !== undefined) count32(count);
  };
  const count32 = (n: number) => {
    view.setUint32(at, n, true);
    at += 4;
  };
  const position = (p: number[]) => {
    for (let i = 0; i < dims; i++, at += 8) view.setFloat64(at, p[i]!, true);
  };
  const ring = (ps: number[][]) => {
    count32(ps.length);
    for (const p of ps) position(p);
  };
  const polygon = (rings: number[][][]) => {
    count32(rings.length);
    for (const r of rings) ring(r);
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
