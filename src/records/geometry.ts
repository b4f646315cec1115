import type { DeadLetterReason, GeoJsonGeometry } from '../core/record.js';

/**
 * The one geometry rule (RFC 7946), shared by the record parser (every feature read) and the
 * GeoJSON format's `validation` (features routed to a GeoJSON tier): known types, positions of 2
 * to 4 finite numbers in lon/lat range, lines of 2 positions or more, rings of 4 or more that
 * close. `nesting` adds what RFC 7946 files are held to beyond that: each hole of a polygon
 * lies within its exterior ring's extent.
 */
export type GeometryCheck =
  | { ok: true; geometry: GeoJsonGeometry; bbox: [number, number, number, number] }
  | { ok: false; reason: DeadLetterReason; message: string };

const geometryDepth: Record<string, number> = {
  Point: 0, MultiPoint: 1, LineString: 1, MultiLineString: 2, Polygon: 2, MultiPolygon: 3,
};

class Bad {
  constructor(readonly reason: DeadLetterReason, readonly message: string) {}
}

export function checkGeometry(input: unknown, options: { nesting?: boolean } = {}): GeometryCheck {
  try {
    return { ok: true, ...walkGeometry(input, options.nesting ?? false) };
  } catch (error) {
    if (error instanceof Bad) return { ok: false, reason: error.reason, message: error.message };
    throw error;
  }
}

/** The reason and message of an out-of-range lon/lat (prefix: where it is), or undefined. */
export function lonLatProblem(lon: number, lat: number, prefix: string): { reason: DeadLetterReason; message: string } | undefined {
  if (lon < -180 || lon > 180) return { reason: 'lon_out_of_range', message: `${prefix}lon ${lon} is outside [-180, 180]` };
  if (lat < -90 || lat > 90) return { reason: 'lat_out_of_range', message: `${prefix}lat ${lat} is outside [-90, 90]` };
  return undefined;
}

function walkGeometry(input: unknown, nesting: boolean): { geometry: GeoJsonGeometry; bbox: [number, number, number, number] } {
  if (input === undefined || input === null) throw new Bad('missing_field', 'geometry: required');
  if (typeof input !== 'object' || Array.isArray(input)) throw new Bad('bad_geometry', 'geometry: expected an object');
  const g = input as { type?: unknown; coordinates?: unknown };
  // Own keys only: "constructor" or "__proto__" would find Object.prototype's members.
  const depth = typeof g.type === 'string' && Object.hasOwn(geometryDepth, g.type) ? geometryDepth[g.type] : undefined;
  if (depth === undefined) throw new Bad('bad_geometry', `geometry.type: expected one of ${Object.keys(geometryDepth).join(', ')}`);
  const bbox: [number, number, number, number] = [Infinity, Infinity, -Infinity, -Infinity];
  const lines = g.type === 'LineString' || g.type === 'MultiLineString';
  const rings = g.type === 'Polygon' || g.type === 'MultiPolygon';
  const walk = (value: unknown, level: number): void => {
    if (!Array.isArray(value)) throw new Bad('bad_geometry', `geometry.coordinates: expected nested arrays for ${g.type}`);
    if (level === 0) {
      if (value.length < 2 || value.length > 4 || !value.every((n) => typeof n === 'number' && Number.isFinite(n))) {
        throw new Bad('bad_geometry', 'geometry.coordinates: a position is 2 to 4 finite numbers');
      }
      const [lon, lat] = value as number[];
      const problem = lonLatProblem(lon!, lat!, 'geometry.coordinates: ');
      if (problem !== undefined) throw new Bad(problem.reason, problem.message);
      bbox[0] = Math.min(bbox[0], lon!);
      bbox[1] = Math.min(bbox[1], lat!);
      bbox[2] = Math.max(bbox[2], lon!);
      bbox[3] = Math.max(bbox[3], lat!);
      return;
    }
    if (value.length === 0) throw new Bad('bad_geometry', `geometry.coordinates: empty ${g.type}`);
    for (const item of value) walk(item, level - 1);
    // RFC 7946 3.1.4, 3.1.6: a line has two positions or more; a ring four or more, closed.
    if (level === 1 && lines) {
      if (value.length < 2) throw new Bad('bad_geometry', `geometry.coordinates: a line of ${g.type} needs 2 positions or more`);
    } else if (level === 1 && rings) {
      if (value.length < 4) throw new Bad('bad_geometry', `geometry.coordinates: a ring of ${g.type} needs 4 positions or more`);
      if (!samePosition(value[0] as number[], value[value.length - 1] as number[])) {
        throw new Bad('bad_geometry', `geometry.coordinates: a ring of ${g.type} must end where it starts`);
      }
    } else if (level === 2 && rings && nesting) checkHoles(value as number[][][], g.type as string);
  };
  walk(g.coordinates, depth);
  return { geometry: { type: g.type, coordinates: g.coordinates } as GeoJsonGeometry, bbox };
}

/** A polygon's holes (rings after the first) lie within the extent of its exterior ring. */
function checkHoles(polygon: number[][][], type: string): void {
  const [outer, ...holes] = polygon;
  const extent = ringExtent(outer!);
  holes.forEach((hole, i) => {
    const h = ringExtent(hole);
    if (h[0] < extent[0] || h[1] < extent[1] || h[2] > extent[2] || h[3] > extent[3]) {
      throw new Bad('bad_geometry', `geometry.coordinates: hole ${i + 1} of a ${type} reaches outside its exterior ring`);
    }
  });
}

function ringExtent(ring: number[][]): [number, number, number, number] {
  const box: [number, number, number, number] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const [x, y] of ring) {
    box[0] = Math.min(box[0], x!);
    box[1] = Math.min(box[1], y!);
    box[2] = Math.max(box[2], x!);
    box[3] = Math.max(box[3], y!);
  }
  return box;
}

function samePosition(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}

/** Twice the signed area of a ring (shoelace): positive when counterclockwise. */
function signedArea2(ring: readonly number[][]): number {
  let sum = 0;
  for (let i = 0; i + 1 < ring.length; i++) sum += ring[i]![0]! * ring[i + 1]![1]! - ring[i + 1]![0]! * ring[i]![1]!;
  return sum;
}

/**
 * RFC 7946 3.1.6's right-hand rule: exterior rings counterclockwise, holes clockwise. Returns
 * the geometry itself when it already follows it, else a copy with the rings that did not reversed.
 */
export function rewound(geometry: GeoJsonGeometry): GeoJsonGeometry {
  const polygon = (rings: number[][][]): number[][][] =>
    rings.map((ring, i) => ((signedArea2(ring) < 0) === (i === 0) ? [...ring].reverse() : ring));
  if (geometry.type === 'Polygon') return { type: 'Polygon', coordinates: polygon(geometry.coordinates) };
  if (geometry.type === 'MultiPolygon') return { type: 'MultiPolygon', coordinates: geometry.coordinates.map(polygon) };
  return geometry;
}
