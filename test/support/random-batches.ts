import type { Batch } from '../../src/core/batch.js';
import { seededRandom } from '../../src/records/sample.js';
import type { GeoJsonGeometry, ObservationRecord, PointRecord, VectorRecord } from '../../src/core/record.js';

/** Seeded random batches for property tests of the encoders: nulls, unicode, repeated times, shuffled offsets. */
export const random = seededRandom;

const texts = ['noaa-isd', 'era5-land', 'Zürich', '東京都', 'ウェザー', 'café', '🌋 volcano', 'a'.repeat(40), '', 'Ω≈ç√'];

export function randomBatch(seed: number, kind: 'point' | 'vector', size: number): Batch {
  const rnd = random(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)]!;
  const maybe = <T>(value: T, nulls = 0.2): T | null => (rnd() < nulls ? null : value);
  const text = () => pick(texts) + (rnd() < 0.5 ? '' : String(Math.floor(rnd() * 5)));
  // Few distinct times, some before 1970: many ties for the storage order to break.
  const times = Array.from({ length: 1 + Math.floor(rnd() * 8) }, () => Math.round((rnd() - 0.1) * 2e15));
  // A batch holds one source partition, except in a merge; some batches mix them to check the ties.
  const sources = rnd() < 0.25 ? ['b.ndjson', 'a.ndjson', 'topic-ü'] : [pick(['obs.ndjson', 'observations'])];
  const partitions = sources.length > 1 ? [0, 3, 1] : [Math.floor(rnd() * 4)];
  const offsets = Array.from({ length: size }, (_, i) => i + 1);
  for (let i = offsets.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [offsets[i], offsets[j]] = [offsets[j]!, offsets[i]!];
  }
  const records: ObservationRecord[] = [];
  for (let i = 0; i < size; i++) {
    const base = {
      position: { source: pick(sources), partition: pick(partitions), offset: offsets[i]! },
      size: 10 + Math.floor(rnd() * 200),
      id: maybe(`${pick(['obs', 'Ä', '測'])}-${Math.floor(rnd() * size * 2)}`, 0.1),
      dataset: text(),
      timeUs: pick(times),
    };
    if (kind === 'point') {
      const point: PointRecord = {
        ...base,
        kind: 'point',
        variable: pick(['temperature', 'wind_speed', 'précipitation', '気温']),
        lon: Math.round((rnd() * 360 - 180) * 1e4) / 1e4,
        lat: Math.round((rnd() * 180 - 90) * 1e4) / 1e4,
        value: rnd() < 0.05 ? -0 : (rnd() - 0.5) * 1e4,
        unit: maybe(pick(['K', 'm/s', 'µg/m³'])),
        quality: maybe(pick(['good', 'suspect'])),
        station: maybe(`ST${Math.floor(rnd() * 12)}`, 0.15),
        elevation: maybe(Math.round(rnd() * 4000)),
        attrs: maybe(JSON.stringify({ note: text(), n: Math.floor(rnd() * 100) }), 0.6),
      };
      records.push(point);
    } else {
      const geometry = randomGeometry(rnd);
      const feature: VectorRecord = {
        ...base,
        kind: 'vector',
        variable: maybe(pick(['burned_area', 'flood_extent'])),
        geometry,
        properties: maybe(JSON.stringify({ name: text() }), 0.3),
        value: maybe(rnd() * 100),
        bbox: bboxOf(geometry),
      };
      records.push(feature);
    }
  }
  const bytes = records.reduce((n, r) => n + r.size, 0);
  return { memoryType: 'TestMemory', tier: 'hot', dataset: records[0]?.dataset ?? 'x', kind, partitionPath: 'p', records, bytes, flushReason: 'rows' };
}

function randomGeometry(rnd: () => number): GeoJsonGeometry {
  const z = rnd() < 0.3;
  const position = () => {
    const p = [Math.round((rnd() * 360 - 180) * 1e3) / 1e3, Math.round((rnd() * 180 - 90) * 1e3) / 1e3];
    if (z) p.push(Math.round(rnd() * 1000));
    return p;
  };
  const positions = (n: number) => Array.from({ length: n }, position);
  const ring = () => {
    const ps = positions(3);
    return [...ps, ps[0]!];
  };
  switch (Math.floor(rnd() * 6)) {
    case 0: return { type: 'Point', coordinates: position() };
    case 1: return { type: 'MultiPoint', coordinates: positions(1 + Math.floor(rnd() * 3)) };
    case 2: return { type: 'LineString', coordinates: positions(2 + Math.floor(rnd() * 3)) };
    case 3: return { type: 'MultiLineString', coordinates: [positions(2), positions(3)] };
    case 4: return { type: 'Polygon', coordinates: [ring()] };
    default: return { type: 'MultiPolygon', coordinates: [[ring()], [ring(), ring()]] };
  }
}

function bboxOf(geometry: GeoJsonGeometry): [number, number, number, number] {
  const box: [number, number, number, number] = [Infinity, Infinity, -Infinity, -Infinity];
  const visit = (c: unknown): void => {
    if (typeof (c as number[])[0] === 'number') {
      const [x, y] = c as [number, number];
      box[0] = Math.min(box[0], x);
      box[1] = Math.min(box[1], y);
      box[2] = Math.max(box[2], x);
      box[3] = Math.max(box[3], y);
    } else for (const item of c as unknown[]) visit(item);
  };
  visit(geometry.coordinates);
  return box;
}
