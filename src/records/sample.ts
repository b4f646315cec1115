import { createWriteStream } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { once } from 'node:events';

/**
 * A deterministic sample of observations for the demo and benchmarks: point observations from
 * stations of two datasets (several variables, hourly over `days` days), some vector features,
 * and a few bad records of every dead-letter kind. Same options → same bytes.
 */
export interface SampleOptions {
  points: number;
  features?: number;
  /** Copies of each bad-record kind. */
  badCopies?: number;
  seed?: number;
  start?: string;
  days?: number;
  /** Stations the points come from (default 60). */
  stations?: number;
}

const variables = [
  { name: 'temperature', unit: 'K', base: 285, spread: 15 },
  { name: 'precipitation', unit: 'mm', base: 0.5, spread: 2 },
  { name: 'wind_speed', unit: 'm/s', base: 5, spread: 4 },
  { name: 'relative_humidity', unit: '%', base: 65, spread: 25 },
];
const datasets = ['noaa-isd', 'era5-land'];

/** A small deterministic generator (mulberry32): the same seed gives the same sample, and the same test data. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The bad lines, one per dead-letter reason the parser knows (unclassified comes from rules). */
export function badRecords(startMs: number): { reason: string; line: string }[] {
  const t = new Date(startMs).toISOString();
  return [
    { reason: 'malformed_json', line: '{"dataset": "noaa-isd", "variable": "temperature", "time": ' },
    { reason: 'not_an_object', line: '[1, 2, 3]' },
    { reason: 'missing_field', line: JSON.stringify({ dataset: 'noaa-isd', time: t, lon: 1, lat: 2, value: 3 }) },
    { reason: 'wrong_type', line: JSON.stringify({ dataset: 'noaa-isd', variable: 'temperature', time: t, lon: 1, lat: 2, value: 'warm' }) },
    { reason: 'lon_out_of_range', line: JSON.stringify({ dataset: 'noaa-isd', variable: 'temperature', time: t, lon: 200, lat: 2, value: 3 }) },
    { reason: 'lat_out_of_range', line: JSON.stringify({ dataset: 'noaa-isd', variable: 'temperature', time: t, lon: 1, lat: -91, value: 3 }) },
    { reason: 'non_finite_value', line: `{"dataset":"noaa-isd","variable":"temperature","time":"${t}","lon":1,"lat":2,"value":1e999}` },
    { reason: 'bad_time', line: JSON.stringify({ dataset: 'noaa-isd', variable: 'temperature', time: '2024-13-45T99:00:00Z', lon: 1, lat: 2, value: 3 }) },
    {
      reason: 'bad_geometry',
      line: JSON.stringify({ type: 'Feature', geometry: { type: 'Circle', coordinates: [0, 0] }, properties: { dataset: 'firms', time: t } }),
    },
    {
      reason: 'too_large',
      line: JSON.stringify({ dataset: 'noaa-isd', variable: 'temperature', time: t, lon: 1, lat: 2, value: 3, attrs: { blob: 'x'.repeat(70 * 1024) } }),
    },
    { reason: 'unclassified', line: JSON.stringify({ dataset: 'noaa-isd', variable: 'sensor_glitch', time: t, lon: 1, lat: 2, value: 3 }) },
  ];
}

export async function writeSample(path: string, options: SampleOptions): Promise<{ lines: number; valid: number; bad: number }> {
  const random = seededRandom(options.seed ?? 42);
  const startMs = Date.parse(options.start ?? '2024-03-01T00:00:00Z');
  const spanMs = (options.days ?? 35) * 86_400_000;
  const stations = Array.from({ length: options.stations ?? 60 }, (_, i) => ({
    id: `ST${String(i).padStart(4, '0')}`,
    dataset: datasets[i % datasets.length]!,
    lon: Math.round((random() * 340 - 170) * 1e4) / 1e4,
    lat: Math.round((random() * 140 - 70) * 1e4) / 1e4,
    elevation: Math.round(random() * 2500),
  }));
  const bad = badRecords(startMs);
  const badCopies = options.badCopies ?? 3;
  const features = options.features ?? 0;
  const total = options.points + features + bad.length * badCopies;
  // Spread the bad lines evenly through the file.
  const badEvery = Math.max(1, Math.floor(total / (bad.length * badCopies + 1)));
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.tmp`;
  const out = createWriteStream(temp);
  let lines = 0;
  let badWritten = 0;
  let pointsWritten = 0;
  let featuresWritten = 0;
  let buffer = '';
  const push = async (line: string) => {
    buffer += `${line}\n`;
    lines++;
    if (buffer.length > 1 << 20) {
      if (!out.write(buffer)) await once(out, 'drain');
      buffer = '';
    }
  };
  while (pointsWritten < options.points || featuresWritten < features || badWritten < bad.length * badCopies) {
    if (lines % badEvery === badEvery - 1 && badWritten < bad.length * badCopies) {
      await push(bad[badWritten % bad.length]!.line);
      badWritten++;
      continue;
    }
    if (featuresWritten < features && (pointsWritten >= options.points || random() < features / (options.points + features))) {
      const lon = Math.round((random() * 300 - 150) * 1e4) / 1e4;
      const lat = Math.round((random() * 120 - 60) * 1e4) / 1e4;
      const d = 0.05 + random() * 0.2;
      const timeMs = startMs + Math.floor((featuresWritten / Math.max(1, features)) * spanMs);
      await push(
        JSON.stringify({
          type: 'Feature',
          id: `fire-${featuresWritten}`,
          geometry: { type: 'Polygon', coordinates: [[[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]] },
          properties: { dataset: 'firms', variable: 'burned_area', time: new Date(timeMs).toISOString(), value: Math.round(d * d * 1e6) / 100, confidence: 'high' },
        }),
      );
      featuresWritten++;
      continue;
    }
    if (pointsWritten >= options.points) continue;
    const i = pointsWritten++;
    const station = stations[i % stations.length]!;
    const variable = variables[Math.floor(i / stations.length) % variables.length]!;
    const timeMs = startMs + Math.floor((i / options.points) * spanMs);
    const value = Math.round((variable.base + (random() - 0.5) * 2 * variable.spread) * 100) / 100;
    await push(
      JSON.stringify({
        id: `obs-${i}`,
        dataset: station.dataset,
        variable: variable.name,
        time: new Date(timeMs).toISOString(),
        lon: station.lon,
        lat: station.lat,
        value: variable.name === 'precipitation' ? Math.max(0, value) : value,
        unit: variable.unit,
        quality: random() < 0.97 ? 'good' : 'suspect',
        station: station.id,
        elevation: station.elevation,
      }),
    );
  }
  out.write(buffer);
  out.end();
  await once(out, 'finish');
  await rename(temp, path);
  return { lines, valid: pointsWritten + featuresWritten, bad: badWritten };
}
