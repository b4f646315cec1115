import type { PointRecord } from '../../core/record.js';
import { failpoint } from '../../core/failpoint.js';
import { StorageError } from '../../core/errors.js';
import type { ArraySpec } from './metadata.js';
import { cellCount, fillCell, ZarrStore, type Cells } from './store.js';

/**
 * Point time series as a CF discrete-sampling-geometry `timeSeries` store (orthogonal
 * multidimensional layout): dims (station, time); one float64 variable per measured variable;
 * `time` (time), `station_name`, `lon`, `lat` (station).
 *
 * The time → index mapping is fixed per store: index = floor((t − origin) / time_step), origin the
 * start of the store's partition period (its finest time token in file_organization), so a time
 * step lands on the same index whatever order records arrive in. Values are binned to their step
 * (a later record of the same station, variable and step wins). Stations get indices in order of
 * their first record's source position, after those already stored: the same whatever the
 * batching when a store's records come from one source partition (a file, a Kafka partition).
 */
export interface SeriesOptions {
  timeStepUs: number;
  /** Start of the store's period, µs since the epoch. */
  originUs: number;
  stationChunk: number;
  timeChunk: number;
}

/** Written before any chunk of an append, deleted after its metadata: which chunks an unfinished append may have touched. */
const INTENT = '.earthmem-append.json';

interface StoreState {
  time: number;
  stations: string[];
  lon: number[];
  lat: number[];
  variables: Map<string, { units: string | null }>;
  /** Cells that hold a value (the catalog row's `rows`). */
  observations: number;
}

const coordSpecs = (s: number, t: number, o: SeriesOptions): ArraySpec[] => [
  { name: 'time', dtype: 'int64', shape: [t], chunks: [o.timeChunk], fillValue: null, dimensions: ['time'],
    attributes: { axis: 'T', calendar: 'standard', long_name: 'time', standard_name: 'time', units: 'microseconds since 1970-01-01 00:00:00' } },
  { name: 'station_name', dtype: 'string', shape: [s], chunks: [o.stationChunk], fillValue: null, dimensions: ['station'],
    attributes: { cf_role: 'timeseries_id', long_name: 'station name' } },
  { name: 'lon', dtype: 'float64', shape: [s], chunks: [o.stationChunk], fillValue: Number.NaN, dimensions: ['station'],
    attributes: { long_name: 'longitude', standard_name: 'longitude', units: 'degrees_east' } },
  { name: 'lat', dtype: 'float64', shape: [s], chunks: [o.stationChunk], fillValue: Number.NaN, dimensions: ['station'],
    attributes: { long_name: 'latitude', standard_name: 'latitude', units: 'degrees_north' } },
];

const variableSpec = (name: string, units: string | null, s: number, t: number, o: SeriesOptions): ArraySpec => ({
  name, dtype: 'float64', shape: [s, t], chunks: [o.stationChunk, o.timeChunk], fillValue: Number.NaN, dimensions: ['station', 'time'],
  attributes: { coordinates: 'time lat lon station_name', long_name: name, ...(units === null ? {} : { units }) },
});

const groupAttributes = (observations: number) => ({ Conventions: 'CF-1.8', featureType: 'timeSeries', earthmem_observations: observations });

/** A variable name that is a safe Zarr array name and does not collide with the coordinates. */
export function variableArrayName(variable: string): string {
  const clean = variable.replace(/[^A-Za-z0-9_-]/g, '_');
  return ['time', 'station_name', 'lon', 'lat'].includes(clean) || clean.startsWith('.') || clean === '' ? `var_${clean}` : clean;
}

async function loadState(store: ZarrStore): Promise<StoreState> {
  const arrays = await readConsolidated(store);
  const empty: StoreState = { time: 0, stations: [], lon: [], lat: [], variables: new Map(), observations: 0 };
  if (arrays === undefined) return empty;
  const shape = (name: string) => arrays.get(name)?.shape;
  const time = shape('time')?.[0] ?? 0;
  const s = shape('station_name')?.[0] ?? 0;
  const state: StoreState = { time, stations: [], lon: [], lat: [], variables: new Map(), observations: arrays.observations };
  for (const [name, meta] of arrays) if (!['time', 'station_name', 'lon', 'lat'].includes(name)) state.variables.set(name, { units: meta.units });
  const specs = coordSpecs(s, time, { timeStepUs: 1, originUs: 0, stationChunk: arrays.get('station_name')!.chunks[0]!, timeChunk: 1 });
  for (const [field, spec] of [['stations', specs[1]!], ['lon', specs[2]!], ['lat', specs[3]!]] as const) {
    const values: Cells = [];
    for (let c = 0; c * spec.chunks[0]! < s; c++) {
      const cells = await store.readChunk(spec, [c]);
      if (cells === undefined) throw new StorageError(`${store.root}: chunk ${c} of ${spec.name} is missing (the store is damaged)`, { context: { key: store.root } });
      values.push(...cells);
    }
    (state[field] as Cells) = values.slice(0, s);
  }
  return state;
}

/** Array name → shape, chunks and units, from the consolidated metadata (undefined: no store yet). */
async function readConsolidated(store: ZarrStore): Promise<(Map<string, { shape: number[]; chunks: number[]; units: string | null }> & { observations: number }) | undefined> {
  const out = Object.assign(new Map<string, { shape: number[]; chunks: number[]; units: string | null }>(), { observations: 0 });
  if (store.layout.format === 2) {
    const meta = (await store.readJson('.zmetadata')) as { metadata: Record<string, { shape?: number[]; chunks?: number[]; units?: string; earthmem_observations?: number }> } | undefined;
    if (meta === undefined) return undefined;
    out.observations = Number(meta.metadata['.zattrs']?.earthmem_observations ?? 0);
    for (const [key, value] of Object.entries(meta.metadata)) {
      const [name, file] = key.split('/');
      if (file === '.zarray') out.set(name!, { shape: value.shape!, chunks: value.chunks!, units: (meta.metadata[`${name}/.zattrs`]?.units as string | undefined) ?? null });
    }
    return out;
  }
  const group = (await store.readJson('zarr.json')) as { attributes?: { earthmem_observations?: number }; consolidated_metadata?: { metadata: Record<string, { shape: number[]; chunk_grid: { configuration: { chunk_shape: number[] } }; attributes: { units?: string } }> } } | undefined;
  if (group === undefined) return undefined;
  out.observations = group.attributes?.earthmem_observations ?? 0;
  for (const [name, value] of Object.entries(group.consolidated_metadata?.metadata ?? {})) {
    out.set(name, { shape: value.shape, chunks: value.chunk_grid.configuration.chunk_shape, units: value.attributes.units ?? null });
  }
  return out;
}

export interface AppendResult {
  /** sha256 of the metadata key written last (the store's visible state). */
  sha256: string;
  stations: number;
  timeSteps: number;
  /** Cells holding a value, all appends together. */
  observations: number;
}

/**
 * Appends point records to the store: chunks first (each an atomic put), then the metadata,
 * consolidated last. A crash before the last metadata write leaves the previous state visible;
 * the next append first restores the chunks the unfinished one touched (cells beyond the visible
 * shape back to fill), so a redelivery writes the same bytes as a run without the crash.
 */
export async function appendPoints(store: ZarrStore, records: readonly PointRecord[], options: SeriesOptions): Promise<AppendResult> {
  const state = await loadState(store);
  const oldS = state.stations.length;
  const oldT = state.time;
  await repairUnfinished(store, state, options);

  // Later positions win within a cell: sort by position, stable.
  const ordered = [...records].sort((a, b) => (a.position.partition - b.position.partition) || (a.position.offset - b.position.offset) || (a.position.source < b.position.source ? -1 : a.position.source > b.position.source ? 1 : 0));
  const stationIndex = new Map(state.stations.map((s, i) => [s, i]));
  const stationOf = (r: PointRecord) => r.station ?? `${r.lon},${r.lat}`;
  const fresh = new Map<string, PointRecord>();
  for (const r of ordered) {
    const name = stationOf(r);
    if (!stationIndex.has(name) && !fresh.has(name)) fresh.set(name, r);
  }
  // In order of their first record's source position (`ordered` is by position): the same order
  // whatever the batching, when a store's records come from one source partition.
  for (const name of fresh.keys()) {
    const r = fresh.get(name)!;
    stationIndex.set(name, state.stations.length);
    state.stations.push(name);
    state.lon.push(r.lon);
    state.lat.push(r.lat);
  }
  let newT = oldT;
  const cells = new Map<string, Map<string, Map<number, number>>>(); // variable → chunk → cell → value
  for (const r of ordered) {
    const ti = Math.floor((r.timeUs - options.originUs) / options.timeStepUs);
    if (ti < 0) throw new StorageError(`${store.root}: record at ${new Date(r.timeUs / 1000).toISOString()} is before the store's period`, { context: { key: store.root } });
    if (ti + 1 > newT) newT = ti + 1;
    const si = stationIndex.get(stationOf(r))!;
    const name = variableArrayName(r.variable);
    if (!state.variables.has(name)) state.variables.set(name, { units: r.unit });
    let byChunk = cells.get(name);
    if (byChunk === undefined) cells.set(name, (byChunk = new Map()));
    const chunk = `${Math.floor(si / options.stationChunk)},${Math.floor(ti / options.timeChunk)}`;
    let cellMap = byChunk.get(chunk);
    if (cellMap === undefined) byChunk.set(chunk, (cellMap = new Map()));
    cellMap.set((si % options.stationChunk) * options.timeChunk + (ti % options.timeChunk), r.value);
  }
  const newS = state.stations.length;
  const coords = coordSpecs(newS, newT, options);
  const variables = [...state.variables].map(([name, { units }]) => variableSpec(name, units, newS, newT, options));
  const oldShape = (spec: ArraySpec) => (spec.dimensions.length === 2 ? [oldS, oldT] : spec.dimensions[0] === 'time' ? [oldT] : [oldS]);

  // The chunks this append writes, announced before the first one.
  const touched: { array: string; index: number[] }[] = [];
  for (const [name, byChunk] of cells) for (const chunk of byChunk.keys()) touched.push({ array: name, index: chunk.split(',').map(Number) });
  for (const spec of coords) {
    const [from, to] = spec.dimensions[0] === 'time' ? [oldT, newT] : [oldS, newS];
    for (let c = Math.floor(from / spec.chunks[0]!); c * spec.chunks[0]! < to; c++) if (to > from) touched.push({ array: spec.name, index: [c] });
  }
  await store.put(INTENT, Buffer.from(JSON.stringify({ shape: { station: oldS, time: oldT }, chunks: touched })));
  failpoint('zarr.intent');

  for (const spec of variables) {
    const byChunk = cells.get(spec.name);
    if (byChunk === undefined) continue;
    for (const [chunk, cellMap] of [...byChunk].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const index = chunk.split(',').map(Number);
      const existing = state.variables.has(spec.name) ? await store.readChunk(spec, index) : undefined;
      const values = masked(spec, index, existing, oldShape(spec));
      for (const [cell, value] of cellMap) {
        if (Number.isNaN(values[cell] as number)) state.observations += 1;
        values[cell] = value;
      }
      await store.writeChunk(spec, index, values);
    }
  }
  for (const spec of coords) {
    const isTime = spec.dimensions[0] === 'time';
    const [from, to] = isTime ? [oldT, newT] : [oldS, newS];
    if (to <= from) continue;
    const size = spec.chunks[0]!;
    for (let c = Math.floor(from / size); c * size < to; c++) {
      const values: Cells = new Array(size).fill(fillCell(spec));
      for (let i = 0; i < size && c * size + i < to; i++) {
        const at = c * size + i;
        values[i] = isTime ? options.originUs + at * options.timeStepUs : spec.name === 'station_name' ? state.stations[at]! : spec.name === 'lon' ? state.lon[at]! : state.lat[at]!;
      }
      await store.writeChunk(spec, [c], values);
    }
  }
  const sha256 = await store.commitMetadata([...coords, ...variables], groupAttributes(state.observations));
  failpoint('zarr.committed');
  await store.backend.delete(store.key(INTENT));
  return { sha256, stations: newS, timeSteps: newT, observations: state.observations };
}

/** A chunk's cells with everything outside `shape` (the visible shape) set to fill. */
function masked(spec: ArraySpec, index: readonly number[], existing: Cells | undefined, shape: readonly number[]): Cells {
  const fill = fillCell(spec);
  const values: Cells = existing ?? new Array(cellCount(spec)).fill(fill);
  if (existing === undefined) return values;
  const [c0, c1 = 1] = spec.chunks;
  for (let i = 0; i < c0!; i++) {
    for (let j = 0; j < c1; j++) {
      const inside = index[0]! * c0! + i < shape[0]! && (spec.chunks.length === 1 || index[1]! * c1 + j < shape[1]!);
      if (!inside) values[i * c1 + j] = fill;
    }
  }
  return values;
}

/** After a crash: the chunks an unfinished append wrote get their cells beyond the visible shape back to fill (or go, when wholly beyond it). */
async function repairUnfinished(store: ZarrStore, state: StoreState, options: SeriesOptions): Promise<void> {
  const intent = (await store.readJson(INTENT)) as { chunks: { array: string; index: number[] }[] } | undefined;
  if (intent === undefined) return;
  const s = state.stations.length;
  const t = state.time;
  const specs = new Map<string, ArraySpec>(coordSpecs(s, t, options).map((c) => [c.name, c]));
  for (const [name, { units }] of state.variables) specs.set(name, variableSpec(name, units, s, t, options));
  for (const { array, index } of intent.chunks) {
    const spec = specs.get(array);
    if (spec === undefined) {
      // An array the unfinished append created: not visible, so none of it may stay.
      await store.deleteChunk({ ...variableSpec(array, null, s, t, options) }, index);
      continue;
    }
    const shape = spec.dimensions.length === 2 ? [s, t] : spec.dimensions[0] === 'time' ? [t] : [s];
    const beyond = index.some((c, d) => c * spec.chunks[d]! >= shape[d]!);
    if (beyond) await store.deleteChunk(spec, index);
    else {
      const existing = await store.readChunk(spec, index);
      if (existing !== undefined) await store.writeChunk(spec, index, masked(spec, index, existing, shape));
    }
  }
  await store.backend.delete(store.key(INTENT));
}

/** Reads back the cells of `records` (the later record of one cell wins): what differs, in words (at most 10). */
export async function pointDifferences(store: ZarrStore, records: readonly PointRecord[], options: SeriesOptions): Promise<string[]> {
  const state = await loadState(store);
  const stationIndex = new Map(state.stations.map((s, i) => [s, i]));
  const expected = new Map<string, { name: string; si: number; ti: number; value: number }>();
  const ordered = [...records].sort((a, b) => (a.position.partition - b.position.partition) || (a.position.offset - b.position.offset));
  const problems: string[] = [];
  for (const r of ordered) {
    const station = r.station ?? `${r.lon},${r.lat}`;
    const si = stationIndex.get(station);
    const name = variableArrayName(r.variable);
    const ti = Math.floor((r.timeUs - options.originUs) / options.timeStepUs);
    if (si === undefined || !state.variables.has(name) || ti >= state.time) {
      if (problems.length < 10) problems.push(`${r.id ?? r.position.offset}: station ${station}, ${name} at step ${ti} is not in the store`);
      continue;
    }
    expected.set(`${name}\u0000${si}\u0000${ti}`, { name, si, ti, value: r.value });
  }
  const chunks = new Map<string, Cells | undefined>();
  for (const { name, si, ti, value } of expected.values()) {
    const spec = variableSpec(name, null, state.stations.length, state.time, options);
    const index = [Math.floor(si / options.stationChunk), Math.floor(ti / options.timeChunk)];
    const id = `${name}\u0000${index.join(',')}`;
    if (!chunks.has(id)) chunks.set(id, await store.readChunk(spec, index));
    const got = chunks.get(id)?.[(si % options.stationChunk) * options.timeChunk + (ti % options.timeChunk)];
    if (got !== value && problems.length < 10) problems.push(`${name} of station ${state.stations[si]} at step ${ti} reads ${String(got)}, not ${value}`);
  }
  return problems;
}
