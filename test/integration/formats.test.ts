/**
 * The spec's other formats through a whole pipeline (issue #14): the storage's default formats
 * (points → CSV, features → GeoJSON, both gzipped) on a tier whose backend names no format, and
 * ParquetStorage's keys (partition_cols year/variable, snappy, row_group_size) on another.
 * Checked by DuckDB (read_csv, read_parquet with hive_partitioning), pyarrow.dataset (hive),
 * ogrinfo through /vsigzip/, and our own decode; a feature GeoJSON's validation refuses goes to
 * the dead letter, not to a file; MigrationJobs between the formats verify and lose nothing.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { MemoryCodex } from '../../src/codex/memory-codex.js';
import type { CatalogRow } from '../../src/catalog/catalog.js';
import { openStorage, type OpenedStorage } from '../../src/pipeline/read.js';
import type { PipelineConfigInput, TierName } from '../../src/pipeline/schema.js';
import { decoderOf, sinkOf } from '../../src/pipeline/tier-writer.js';
import { writeSample } from '../../src/records/sample.js';
import { tempDir } from '../support/fixtures.js';
import { checkParquet, referencePython } from '../support/python.js';

const POINTS = 6_000;
function configOf(codex: MemoryCodex) {
  const v = codex.validate();
  if (!v.ok) throw new Error(v.message);
  return v.config;
}
const FEATURES = 60;

function pipeline(dir: string, input: string): PipelineConfigInput {
  return {
    name: 'formats',
    source: { type: 'file', path: input, format: 'ndjson' },
    classify: {
      rules: [
        { match: { kind: 'vector' }, memory_type: 'HazardMemory' },
        { match: { variable: 'temperature' }, memory_type: 'TemperatureMemory' },
      ],
      default: 'ClimateMemory',
    },
    routing: { default: 'warm', memory_types: { TemperatureMemory: 'hot', HazardMemory: 'hot' } },
    batch: { max_rows: 2_000 },
    storage: {
      default_vector_format: 'geojson',
      default_timeseries_format: 'csv',
      tier_configs: {
        hot: { primary_backend: { type: 'local_file', base_path: join(dir, 'hot'), organization: 'category/subcategory', compression: 'gzip' } },
        warm: {
          primary_backend: {
            type: 'local_file', base_path: join(dir, 'warm'), format: 'parquet', partition_cols: ['year', 'variable'], compression: 'snappy', row_group_size: 500, page_size: 4096,
          },
        },
        cold: { primary_backend: { type: 'local_file', base_path: join(dir, 'cold'), format: 'geoparquet' } },
      },
    },
    catalog: { type: 'sqlite', path: join(dir, 'catalog.sqlite') },
    dead_letter: { type: 'local_file', path: join(dir, 'dead-letter.ndjson') },
  };
}

const python = (script: string, ...args: string[]) => JSON.parse(execFileSync(referencePython(), ['-c', script, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 })) as unknown;

/** Every id a tier holds, read back through the catalog and our decoders. */
async function idsIn(storage: OpenedStorage, tier: TierName): Promise<string[]> {
  const ids: string[] = [];
  for (const row of await storage.catalog.list({ tier })) ids.push(...(await decodeRow(storage, row)).map((r) => r.id!));
  return ids.sort();
}

async function decodeRow(storage: OpenedStorage, row: CatalogRow) {
  const sink = sinkOf(storage.tiers.get(row.tier as TierName)!, row.kind);
  if (sink.kind !== 'objects') throw new Error('objects expected');
  return decoderOf(sink, row.kind, row.format).decode(await sink.backend.get(row.key), { source: row.key, partition: 0 }, row.key).records;
}

describe('formats in a pipeline: default formats, ParquetStorage keys, migrations between formats', () => {
  it('writes, reads back with the reference readers, and migrates across formats', { timeout: 600_000 }, async () => {
    const dir = tempDir('formats');
    const input = join(dir, 'in.ndjson');
    await writeSample(input, { points: POINTS, features: FEATURES, badCopies: 0, seed: 11 });
    // A polygon whose hole lies outside it: the parser takes it (rings closed, in range); GeoJSON's validation refuses it.
    const bad = { type: 'Feature', id: 'bad-nesting', geometry: { type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]], [[5, 5], [5, 6], [6, 6], [6, 5], [5, 5]]] }, properties: { dataset: 'firms', time: '2024-03-02T00:00:00Z' } };
    appendFileSync(input, `${JSON.stringify(bad)}\n`);
    const lines = readFileSync(input, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; variable?: string; time?: string; type?: string });
    const valid = lines.filter((l) => l.id !== 'bad-nesting');
    const allIds = valid.map((l) => l.id).sort();

    const config = pipeline(dir, input);
    const codex = new MemoryCodex(config);
    const summary = await codex.run();
    assert.equal(summary.recordsWritten, valid.length);
    assert.equal(summary.deadLettered, 1);
    const dead = readFileSync(join(dir, 'dead-letter.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { reason: string; message: string });
    assert.equal(dead.length, 1);
    assert.equal(dead[0]!.reason, 'bad_geometry');
    assert.match(dead[0]!.message, /tier hot: format geojson \(validation: true\): .*hole 1 of a Polygon reaches outside its exterior ring/);

    let storage = await openStorage(configOf(codex));
    try {
      const rows = await storage.catalog.list();
      assert.deepEqual([...new Set(rows.map((r) => `${r.tier} ${r.kind} ${r.format} ${r.codec}`))].sort(), ['hot point csv gzip', 'hot vector geojson gzip', 'warm point parquet snappy']);
      for (const r of rows.filter((r) => r.tier === 'hot')) assert.match(r.key, r.kind === 'point' ? /\.csv\.gz$/ : /\.geojson\.gz$/);
      for (const r of rows.filter((r) => r.tier === 'warm')) assert.match(r.key, /^ClimateMemory\/year=2024\/variable=(precipitation|wind_speed|relative_humidity)\/part-[0-9a-f]+\.parquet$/);
      assert.deepEqual(await Promise.all((['hot', 'warm'] as const).map((t) => idsIn(storage, t))).then((a) => a.flat().sort()), allIds);
    } finally {
      await storage.close();
    }

    // DuckDB: the CSV objects with their types, the partitioned Parquet dataset as one table.
    const hotCsv = join(dir, 'hot', 'TemperatureMemory');
    const warm = join(dir, 'warm');
    const duck = python(`
import duckdb, json, sys
con = duckdb.connect()
con.execute("SET TimeZone='UTC'")
csv = con.sql(f"SELECT * FROM read_csv('{sys.argv[1]}/**/*.csv.gz', header=true, allow_quoted_nulls=false)")
pq = con.sql(f"SELECT * FROM read_parquet('{sys.argv[2]}/**/*.parquet', hive_partitioning=true)")
file_cols = con.execute(f"SELECT name FROM parquet_schema('{sys.argv[2]}/**/*.parquet') WHERE name IN ('variable', 'year')").fetchall()
print(json.dumps({
  'csv_types': dict(zip(csv.columns, [str(t) for t in csv.types])),
  'csv_count': con.execute(f"SELECT count(*), count(DISTINCT id) FROM read_csv('{sys.argv[1]}/**/*.csv.gz', header=true)").fetchone(),
  'pq_columns': pq.columns,
  'pq_groups': con.execute(f"SELECT variable, year, count(*), count(DISTINCT id) FROM read_parquet('{sys.argv[2]}/**/*.parquet', hive_partitioning=true) GROUP BY ALL ORDER BY ALL").fetchall(),
  'file_cols': file_cols,
}))
`, hotCsv, warm) as { csv_types: Record<string, string>; csv_count: number[]; pq_columns: string[]; pq_groups: [string, number, number, number][]; file_cols: unknown[] };
    const temperature = valid.filter((l) => l.variable === 'temperature').length;
    assert.deepEqual(duck.csv_count, [temperature, temperature]);
    assert.equal(duck.csv_types.time, 'TIMESTAMP WITH TIME ZONE');
    assert.equal(duck.csv_types.value, 'DOUBLE');
    assert.equal(duck.csv_types.station, 'VARCHAR');
    assert.ok(duck.pq_columns.includes('variable') && duck.pq_columns.includes('year'), duck.pq_columns.join(','));
    assert.deepEqual(duck.file_cols, [], 'partition columns are in the paths, not the files');
    const expectedGroups = ['precipitation', 'relative_humidity', 'wind_speed'].map((v) => {
      const n = valid.filter((l) => l.variable === v).length;
      return [v, 2024, n, n];
    });
    assert.deepEqual(duck.pq_groups, expectedGroups);

    // pyarrow.dataset with hive partitioning: one table, the same groups, the same ids.
    const arrow = python(`
import json, sys, pyarrow.dataset as ds
t = ds.dataset(sys.argv[1], format='parquet', partitioning='hive').to_table()
g = t.group_by(['variable', 'year']).aggregate([('id', 'count')]).sort_by([('variable', 'ascending')])
print(json.dumps({'rows': t.num_rows, 'columns': t.column_names, 'groups': g.to_pylist(), 'ids': sorted(t.column('id').to_pylist())}))
`, join(warm, 'ClimateMemory')) as { rows: number; columns: string[]; groups: { variable: string; year: number; id_count: number }[]; ids: string[] };
    assert.equal(arrow.rows, valid.length - temperature - FEATURES);
    assert.deepEqual(arrow.groups.map((g) => [g.variable, g.year, g.id_count, g.id_count]), expectedGroups);
    assert.deepEqual(arrow.ids, valid.filter((l) => l.variable !== undefined && l.variable !== 'temperature').map((l) => l.id).sort());

    // pyarrow and GDAL on the objects themselves: valid GeoParquet, snappy, 500-row groups; GeoJSON through /vsigzip/.
    storage = await openStorage(configOf(codex));
    try {
      const warmRows = await storage.catalog.list({ tier: 'warm' });
      const files = warmRows.map((r) => join(warm, r.key));
      const check = checkParquet(files);
      for (const f of check.files) {
        assert.deepEqual(f.problems, [], f.path);
        assert.deepEqual(f.codecs, ['SNAPPY']);
        assert.equal(f.row_groups, Math.ceil(f.rows / 500));
      }
      for (const r of await storage.catalog.list({ tier: 'hot', kind: 'vector' } as never)) {
        if (r.kind !== 'vector') continue;
        const info = execFileSync('ogrinfo', ['-ro', '-al', '-so', `/vsigzip/${join(dir, 'hot', r.key)}`], { encoding: 'utf8' });
        assert.match(info, new RegExp(`Feature Count: ${r.rows}\\b`));
      }
    } finally {
      await storage.close();
    }

    // Migrations across formats: partitioned Parquet → GeoParquet, CSV/GeoJSON → GeoParquet, and back to CSV/GeoJSON.
    for (const [id, source_tier, destination_tier] of [['warm-to-cold', 'warm', 'cold'], ['hot-to-cold', 'hot', 'cold'], ['cold-to-hot', 'cold', 'hot']] as const) {
      const status = await codex.executeMigration({ id, source_tier, destination_tier, concurrency: 2 });
      assert.equal(status.state, 'completed', `${id}: ${JSON.stringify(status)}`);
    }
    storage = await openStorage(configOf(codex));
    try {
      assert.deepEqual(await storage.catalog.list({ tier: 'warm' }), []);
      assert.deepEqual(await storage.catalog.list({ tier: 'cold' }), []);
      const rows = await storage.catalog.list({ tier: 'hot' });
      assert.deepEqual([...new Set(rows.map((r) => `${r.kind} ${r.format}`))].sort(), ['point csv', 'vector geojson']);
      assert.deepEqual(await idsIn(storage, 'hot'), allIds);
      // The points that were partitioned got their variable back from the path.
      const variables = new Set<string>();
      for (const row of rows.filter((r) => r.kind === 'point')) for (const r of await decodeRow(storage, row)) variables.add(r.variable!);
      assert.deepEqual([...variables].sort(), ['precipitation', 'relative_humidity', 'temperature', 'wind_speed']);
    } finally {
      await storage.close();
    }
    writeFileSync(join(dir, 'pipeline.yaml'), stringify(config));
    const validate = execFileSync(process.execPath, ['bin/earthmem.js', 'validate', join(dir, 'pipeline.yaml')], { encoding: 'utf8' });
    assert.match(validate, /hot point: csv \(storage\.default_timeseries_format\)/);
    assert.match(validate, /hot vector: geojson \(storage\.default_vector_format\)/);
    assert.match(validate, /warm point: parquet \(primary_backend\.format\)/);
  });
});
