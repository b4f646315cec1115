import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { before, describe, it } from 'node:test';
import { SqliteCatalog } from '../../src/catalog/sqlite.js';
import { runPipeline } from '../../src/pipeline/run.js';
import { badRecords, writeSample } from '../../src/records/sample.js';
import { checkParquet } from '../support/python.js';
import { demoConfig, tempDir } from '../support/fixtures.js';

const POINTS = 40_000;
const FEATURES = 400;
const BAD_COPIES = 2;

function filesUnder(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (name.endsWith('.parquet')) out.set(relative(dir, full), createHash('sha256').update(readFileSync(full)).digest('hex'));
    }
  };
  walk(dir);
  return out;
}

describe('file replay → tiered GeoParquet + SQLite catalog', () => {
  const dir = tempDir('spine');
  const input = join(dir, 'in.ndjson');
  const data = join(dir, 'out');
  // Small batches so objects split on rows, bytes and the memory bound, not only at the end;
  // encoded on a pool of two workers (the replay below encodes on the main thread).
  const config = demoConfig(input, data, (y) => y.replace('max_rows: 50000', 'max_rows: 3000\n  max_open_bytes: 2MiB\n  encode_workers: 2'));
  const catalogPath = join(data, 'catalog.sqlite');
  const deadLetterPath = join(data, 'dead-letter.ndjson');

  before(async () => {
    await writeSample(input, { points: POINTS, features: FEATURES, badCopies: BAD_COPIES, seed: 7 });
  });

  it('writes every valid record exactly once, as read back by pyarrow and DuckDB', async () => {
    const summary = await runPipeline(config);
    const bad = badRecords(0).length * BAD_COPIES;
    assert.equal(summary.recordsRead, POINTS + FEATURES + bad);
    assert.equal(summary.recordsWritten, POINTS + FEATURES);
    assert.equal(summary.deadLettered, bad);
    assert.equal(summary.complete, true);

    const catalog = new SqliteCatalog(catalogPath);
    const rows = await catalog.list();
    await catalog.close();
    assert.equal(rows.length, summary.objects);
    const check = checkParquet(rows.map((r) => r.uri));
    assert.equal(check.duckdb_count, POINTS + FEATURES);
    const ids = check.files.flatMap((f) => f.ids as string[]).sort();
    const expected = [
      ...Array.from({ length: POINTS }, (_, i) => `obs-${i}`),
      ...Array.from({ length: FEATURES }, (_, i) => `fire-${i}`),
    ].sort();
    assert.deepEqual(ids, expected);

    for (const [i, f] of check.files.entries()) {
      const row = rows[i]!;
      assert.deepEqual(f.problems, [], f.path);
      assert.equal(f.rows, row.rows);
      assert.equal(createHash('sha256').update(readFileSync(row.uri)).digest('hex'), row.sha256);
      assert.equal(statSync(row.uri).size, row.bytes);
      assert.deepEqual(f.geo.columns?.geometry?.bbox, row.bbox);
      // pyarrow names Parquet's LZ4_RAW codec "LZ4" (the deprecated Hadoop framing is LZ4_HADOOP).
      const codec = { hot: 'ZSTD', warm: 'LZ4', cold: 'ZSTD' }[row.tier];
      assert.deepEqual(f.codecs, [codec]);
      assert.equal(f.schema.time, 'timestamp[us, tz=UTC]');
      assert.equal(f.schema.geometry, 'binary');
      if (row.kind === 'vector') assert.deepEqual(f.geo.columns?.geometry?.geometry_types, ['Polygon']);
      else assert.deepEqual(f.geo.columns?.geometry?.geometry_types, ['Point']);
      assert.ok(row.uri.startsWith(join(data, row.tier)), 'object under its tier root');
    }
    const memoryTypes = new Set(rows.map((r) => `${r.memoryType}@${r.tier}`));
    assert.deepEqual([...memoryTypes].sort(), [
      'AtmosphereMemory@warm', 'HazardMemory@cold', 'PrecipitationMemory@warm', 'TemperatureMemory@hot',
    ]);
  });

  it('puts every bad record in the dead letter with its reason, original payload and line', () => {
    const lines = readFileSync(input, 'utf8').split('\n');
    const entries = readFileSync(deadLetterPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const expected = badRecords(0).map((b) => b.reason).flatMap((r) => Array(BAD_COPIES).fill(r)).sort();
    assert.deepEqual(entries.map((e) => e.reason).sort(), expected);
    for (const e of entries) {
      assert.equal(e.payload, lines[e.offset - 1], `payload of line ${e.offset}`);
      assert.equal(e.source, input.startsWith(process.cwd()) ? relative(process.cwd(), input) : input);
      assert.ok(e.message.length > 0);
    }
  });

  it('running the same input again, encoding on the main thread this time, yields the same objects and catalog', async () => {
    const catalog = new SqliteCatalog(catalogPath);
    const before = await catalog.list();
    const filesBefore = filesUnder(data);
    await runPipeline({ ...config, batch: { ...config.batch, encode_workers: 0 } });
    const after = await catalog.list();
    await catalog.close();
    assert.deepEqual(after, before);
    assert.deepEqual(filesUnder(data), filesBefore);
  });
});
