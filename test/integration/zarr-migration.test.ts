/**
 * A MigrationJob moves Zarr stores as units (pipelines/dev.yaml: warm zstd 3 → cold zstd 9):
 * every key copied and re-compressed, read back and verified, the catalog switched, the source's
 * keys deleted; killed (-9) in the middle of a copy, the job resumes to the same result.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeSample } from '../../src/records/sample.js';
import { tempDir } from '../support/fixtures.js';
import { checkZarr } from '../support/python.js';

function earthmem(args: string[], env: NodeJS.ProcessEnv) {
  return spawnSync(process.execPath, ['bin/earthmem.js', ...args], { env, encoding: 'utf8' });
}

const valuesOf = (path: string) => {
  const got = checkZarr(path);
  return { stations: got.station_name, time: got.time, values: got.values };
};

describe('MigrationJob appends SQLite rows into Zarr stores (dev.yaml hot → warm)', () => {
  it('points go into the stores of their partition, features into GeoParquet; every value once; hot empty', async () => {
    const dir = tempDir('rows-to-zarr');
    const input = join(dir, 'in.ndjson');
    await writeSample(input, { points: 3_000, features: 30, stations: 12, days: 40, badCopies: 0, seed: 8 });
    // Everything stays in hot at ingest, so the move is what fills warm.
    const pipeline = join(dir, 'dev-hot.yaml');
    writeFileSync(pipeline, readFileSync('pipelines/dev.yaml', 'utf8').replace(/    PrecipitationMemory: warm\n    AtmosphereMemory: cold/, '    PrecipitationMemory: hot\n    AtmosphereMemory: hot'));
    const env: NodeJS.ProcessEnv = { ...process.env, EARTHMEM_DATA: join(dir, 'data'), EARTHMEM_INPUT: input };
    delete env.EARTHMEM_FAILPOINT;
    assert.equal(earthmem(['run', pipeline], env).status, 0);
    const moved = earthmem(['migrate', pipeline, '--id', 'h2w', '--source-tier', 'hot', '--destination-tier', 'warm', '--json'], env);
    assert.equal(moved.status, 0, moved.stderr);
    assert.equal((JSON.parse(moved.stdout.trim().split('\n').pop()!) as { state: string }).state, 'completed', moved.stdout);
    const rows = JSON.parse(`[${earthmem(['catalog', 'ls', pipeline, '--json'], env).stdout.trim().split('\n').join(',')}]`) as { key: string; uri: string; tier: string; rows: number; format: string; kind: string }[];
    assert.deepEqual(rows.filter((r) => r.tier === 'hot'), []);
    const stores = rows.filter((r) => r.format === 'zarr');
    assert.ok(stores.length >= 4 && stores.every((r) => r.tier === 'warm' && r.kind === 'point' && r.key.endsWith('.zarr')), JSON.stringify(stores.map((r) => r.key)));
    assert.equal(new Set(stores.map((r) => r.key)).size, stores.length, 'one row per store');
    let values = 0;
    for (const r of stores) {
      const got = checkZarr(r.uri);
      const n = Object.values(got.values).reduce((k, v) => k + v.data.flat().filter((x) => x !== null).length, 0);
      assert.equal(n, r.rows, r.key);
      values += n;
    }
    assert.equal(values, 3_000, 'every point once (the sample has no two values of a station and variable in one hour)');
    const features = rows.filter((r) => r.kind === 'vector');
    assert.ok(features.length > 0 && features.every((r) => r.tier === 'warm' && r.format === 'parquet' && r.uri.includes('warm_features')), JSON.stringify(features));
    assert.equal(features.reduce((n, r) => n + r.rows, 0), 30);
    const gc = earthmem(['gc', pipeline, '--grace', '0s', '--json'], env);
    assert.equal(gc.status, 0, gc.stderr);
    assert.deepEqual(gc.stdout.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { incomplete: boolean }).filter((o) => !o.incomplete), []);
  });
});

describe('MigrationJob moves Zarr stores as units', () => {
  for (const crash of [undefined, 'zarr.copying@7']) {
    it(crash === undefined ? 'warm → cold: re-compressed, verified, switched, source gone' : `killed at ${crash}, then resumed: the same result`, async () => {
      const dir = tempDir('zarr-move');
      const input = join(dir, 'in.ndjson');
      await writeSample(input, { points: 4_000, features: 0, stations: 12, days: 40, badCopies: 0, seed: 4 });
      const env: NodeJS.ProcessEnv = { ...process.env, EARTHMEM_DATA: join(dir, 'data'), EARTHMEM_INPUT: input };
      delete env.EARTHMEM_FAILPOINT;
      assert.equal(earthmem(['run', 'pipelines/dev.yaml'], env).status, 0);
      const before = JSON.parse(`[${earthmem(['catalog', 'ls', 'pipelines/dev.yaml', '--json', '--tier', 'warm'], env).stdout.trim().split('\n').join(',')}]`) as { key: string; uri: string; rows: number }[];
      assert.ok(before.length >= 2, JSON.stringify(before));
      const expected = Object.fromEntries(before.map((r) => [r.key, valuesOf(r.uri)]));
      const job = ['migrate', 'pipelines/dev.yaml', '--id', 'w2c', '--source-tier', 'warm', '--destination-tier', 'cold', '--json'];
      if (crash !== undefined) assert.equal(earthmem(job, { ...env, EARTHMEM_FAILPOINT: crash }).signal, 'SIGKILL');
      const moved = earthmem(job, env);
      assert.equal(moved.status, 0, moved.stderr);
      const status = JSON.parse(moved.stdout.trim().split('\n').pop()!) as { state: string; objects_done: number };
      assert.equal(status.state, 'completed', moved.stdout);
      assert.equal(status.objects_done, before.length);
      const after = JSON.parse(`[${earthmem(['catalog', 'ls', 'pipelines/dev.yaml', '--json'], env).stdout.trim().split('\n').join(',')}]`) as { key: string; uri: string; tier: string; rows: number; format: string; codec_level: number }[];
      assert.deepEqual(after.filter((r) => r.tier === 'warm'), []);
      for (const b of before) {
        const row = after.find((r) => r.key === b.key && r.tier === 'cold')!;
        assert.ok(row !== undefined, b.key);
        assert.equal(row.format, 'zarr');
        assert.equal(row.codec_level, 9);
        assert.equal(row.rows, b.rows);
        assert.deepEqual(valuesOf(row.uri), expected[b.key], `${b.key}: the same stations, times and values`);
        const zarray = JSON.parse(readFileSync(join(row.uri, Object.keys(expected[b.key]!.values)[0]!, '.zarray'), 'utf8')) as { compressor: unknown };
        assert.deepEqual(zarray.compressor, { id: 'zstd', level: 9 });
      }
      assert.equal(readdirSync(join(dir, 'data', 'warm_memory'), { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).length, 0, 'no key of a moved store left in warm');
      const gc = earthmem(['gc', 'pipelines/dev.yaml', '--grace', '0s', '--json'], env);
      assert.equal(gc.status, 0, gc.stderr);
      assert.deepEqual(gc.stdout.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { incomplete: boolean }).filter((o) => !o.incomplete), []);
    });
  }
});
