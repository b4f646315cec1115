import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LocalFileStorage } from '../../../connectors/local-file/storage.js';
import type { PointRecord } from '../../core/record.js';
import { checkZarr } from '../../../test/support/python.js';
import { chunkCodec, type ZarrCompression, type ZarrFormat } from './codecs.js';
import { ZarrStore } from './store.js';
import { appendPoints, type SeriesOptions } from './timeseries.js';

const HOUR = 3_600_000_000;
const ORIGIN = Date.UTC(2024, 2, 1) * 1000;

function point(offset: number, station: string, variable: string, hour: number, value: number): PointRecord {
  return {
    kind: 'point', position: { source: 'test', partition: 0, offset }, size: 100, id: `obs-${offset}`, dataset: 'ds', variable,
    timeUs: ORIGIN + hour * HOUR + 25_000_000, lon: 10 + station.charCodeAt(station.length - 1) / 10, lat: -5, value,
    unit: variable === 'temperature' ? 'K' : 'mm', quality: null, station, elevation: null, attrs: null,
  };
}

const check = checkZarr;

async function storeAt(format: ZarrFormat, compression: ZarrCompression, separator: '/' | '.') {
  const dir = await mkdtemp(join(tmpdir(), 'earthmem-zarr-'));
  const backend = new LocalFileStorage({ base_path: dir, permissions: 'rw-r--r--' });
  return { dir, store: new ZarrStore(backend, 'T/2024/03/ds.zarr', { format, separator, codec: chunkCodec(compression, compression === 'gzip' ? 5 : 3, format) }) };
}
const options: SeriesOptions = { timeStepUs: HOUR, originUs: ORIGIN, stationChunk: 2, timeChunk: 4 };

for (const [format, compression, separator] of [[2, 'zstd', '/'], [2, 'gzip', '.'], [2, 'lz4', '/'], [2, 'blosc', '/'], [3, 'zstd', '/'], [3, 'gzip', '.'], [3, 'blosc', '/']] as const) {
  test(`point time series, v${format} ${compression} "${separator}": appends grow stations and time; xarray and zarr-python read it`, async () => {
    const { dir, store } = await storeAt(format, compression, separator);
    await appendPoints(store, [point(1, 'B', 'temperature', 0, 280), point(2, 'A', 'temperature', 1, 281), point(3, 'A', 'precipitation', 1, 0.5)], options);
    // Second append: a new station, later times, and an update of an existing cell (a later record wins).
    await appendPoints(store, [point(4, 'C', 'temperature', 6, 282), point(5, 'B', 'temperature', 0, 279.5), point(6, 'A', 'temperature', 9, 283)], options);
    const got = check(join(dir, store.root));
    assert.equal(got.zarr_format, format);
    assert.deepEqual(got.dims, { station: 3, time: 10 });
    assert.equal(got.attrs.featureType, 'timeSeries');
    assert.deepEqual(got.data_vars, ['precipitation', 'temperature']);
    assert.ok(got.coords.includes('time') && got.coords.includes('lon') && got.coords.includes('lat'), got.coords.join(','));
    assert.equal(got.time_dtype, 'datetime64[ns]');
    assert.equal(got.time[0], '2024-03-01T00:00:00.000000');
    assert.equal(got.time[9], '2024-03-01T09:00:00.000000');
    // Stations in order of their first record's position: B (offset 1), A (2), C (4).
    assert.deepEqual(got.station_name, ['B', 'A', 'C']);
    const t = got.values.temperature!;
    assert.deepEqual(t.dims, ['station', 'time']);
    assert.equal(t.attrs.units, 'K');
    assert.deepEqual(t.data[0], [279.5, null, null, null, null, null, null, null, null, null]);
    assert.deepEqual(t.data[1], [null, 281, null, null, null, null, null, null, null, 283]);
    assert.deepEqual(t.data[2], [null, null, null, null, null, null, 282, null, null, null]);
    assert.deepEqual(got.values.precipitation!.data[1]!.slice(0, 2), [null, 0.5]);
    assert.equal(got.zarr_arrays.station_name!.attrs.cf_role, 'timeseries_id');
    const keys = await readdir(join(dir, store.root), { recursive: true });
    assert.ok(!keys.some((k) => k.endsWith('.tmp') || k.includes('earthmem-append')), keys.join(' '));
  });
}

test('same records in the same order, same bytes (a replay rewrites the store identically)', async () => {
  const records = [point(1, 'B', 'temperature', 0, 280), point(2, 'A', 'temperature', 5, 281)];
  const a = await storeAt(2, 'zstd', '/');
  const b = await storeAt(2, 'zstd', '/');
  await appendPoints(a.store, records, options);
  await appendPoints(b.store, records, options);
  await appendPoints(b.store, records, options); // redelivered
  const files = async (dir: string) => {
    const names = (await readdir(dir, { recursive: true })).sort();
    return Promise.all(names.map(async (n) => [n, (await readFile(join(dir, n)).catch(() => Buffer.alloc(0))).toString('hex')]));
  };
  assert.deepEqual(await files(join(b.dir, b.store.root)), await files(join(a.dir, a.store.root)));
});

test('an append that died halfway, then appends of other batches: the same bytes as without it (the intent restores its chunks)', async () => {
  const a = point(1, 'A', 'temperature', 0, 280);
  const x = point(2, 'X', 'temperature', 9, 290); // another time chunk than y
  const y = point(3, 'Y', 'temperature', 1, 291);
  const clean = await storeAt(2, 'zstd', '/');
  for (const batch of [[a], [y], [x]]) await appendPoints(clean.store, batch, options);

  const crashed = await storeAt(2, 'zstd', '/');
  await appendPoints(crashed.store, [a], options);
  // The process dies before the consolidated metadata: every chunk of [x, y] is written, nothing is visible.
  const backend = crashed.store.backend;
  const dying = Object.create(backend) as typeof backend;
  dying.put = async (key, body, o) => {
    if (key.endsWith('.zmetadata')) throw new Error('killed');
    return backend.put(key, body, o);
  };
  await assert.rejects(appendPoints(new ZarrStore(dying, crashed.store.root, crashed.store.layout), [x, y], options), /killed/);
  // Redelivered in other batches (another batching after the restart).
  for (const batch of [[y], [x]]) await appendPoints(crashed.store, batch, options);
  const files = async (dir: string) => {
    const names = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((d) => d.isFile() && !d.name.endsWith('.tmp')).map((d) => join(d.parentPath, d.name).slice(dir.length)).sort();
    return Promise.all(names.map(async (n) => [n, (await readFile(join(dir, n))).toString('hex')]));
  };
  assert.deepEqual(await files(join(crashed.dir, crashed.store.root)), await files(join(clean.dir, clean.store.root)));
});
