/**
 * MigrationJob end to end on local tiers and SQLite rows: the spec's example, re-encoding, dry run
 * and plan hash, kill -9 at every step, a corrupted copy, gc, and rows → GeoParquet objects.
 * Every object is read back through the catalog by pyarrow and DuckDB afterwards.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, cpSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { SqliteCatalog } from '../../src/catalog/sqlite.js';
import { MemoryCodex } from '../../src/codex/memory-codex.js';
import { writeSample } from '../../src/records/sample.js';
import { tempDir } from '../support/fixtures.js';
import { checkParquet } from '../support/python.js';

const POINTS = 20_000;
const FEATURES = 100;

/** The embedded default with a fourth tier, glacier, whose codec equals hot's (so moves there copy bytes as they are). */
function pipelineWithGlacier(dir: string): string {
  const file = join(dir, 'pipeline.yaml');
  const demo = readFileSync('pipelines/demo.yaml', 'utf8');
  writeFileSync(
    file,
    demo.replace(
      '\ncatalog:',
      `    glacier:
      primary_backend:
        type: local_file
        base_path: \${EARTHMEM_DATA:-data/demo}/glacier
        format: parquet
        file_organization: year/month/dataset
      compression: { algorithm: zstd, level: low }

catalog:`,
    ),
  );
  return file;
}

interface Fixture {
  dir: string;
  pipeline: string;
  env: NodeJS.ProcessEnv;
}

const expectedIds = [...Array.from({ length: POINTS }, (_, i) => `obs-${i}`), ...Array.from({ length: FEATURES }, (_, i) => `fire-${i}`)].sort();

describe('MigrationJob on the embedded default', () => {
  const base = tempDir('migration');
  const input = join(base, 'in.ndjson');
  const pristine = join(base, 'pristine');

  before(async () => {
    await writeSample(input, { points: POINTS, features: FEATURES, badCopies: 0, seed: 5 });
    const pipeline = pipelineWithGlacier(base);
    const run = spawnSync(process.execPath, ['bin/earthmem.js', 'run', pipeline], { encoding: 'utf8', env: { ...process.env, EARTHMEM_DEMO_INPUT: input, EARTHMEM_DATA: pristine } });
    assert.equal(run.status, 0, run.stderr);
  });

  /** A copy of the ingested tiers and catalog, for one test to move around. */
  const fixture = (name: string): Fixture => {
    const dir = join(base, name);
    cpSync(pristine, join(dir, 'data'), { recursive: true });
    // The catalog names files by absolute path: point the copy's rows at the copy's files.
    const db = new Database(join(dir, 'data/catalog.sqlite'));
    db.prepare('UPDATE objects SET uri = replace(uri, ?, ?)').run(pristine, join(dir, 'data'));
    db.close();
    return { dir, pipeline: pipelineWithGlacier(dir), env: { ...process.env, EARTHMEM_DEMO_INPUT: input, EARTHMEM_DATA: join(dir, 'data') } };
  };
  const earthmem = (f: Fixture, args: string[], extraEnv: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, ['bin/earthmem.js', ...args], { encoding: 'utf8', env: { ...f.env, ...extraEnv } });
  const codex = (f: Fixture) => MemoryCodex.fromFile(f.pipeline, { env: f.env });

  /** Every valid id exactly once through the catalog (pyarrow and DuckDB), and what each tier holds. */
  const assertExactlyOnce = async (f: Fixture) => {
    const rows = await codex(f).listObjects();
    const check = checkParquet(rows.map((r) => r.uri));
    assert.equal(check.duckdb_count, POINTS + FEATURES);
    assert.deepEqual(check.files.flatMap((file) => file.ids as string[]).sort(), expectedIds);
    for (const file of check.files) assert.deepEqual(file.problems, [], file.path);
    return rows;
  };
  const gc = (f: Fixture, ...flags: string[]) => {
    const r = earthmem(f, ['gc', f.pipeline, '--grace', '0s', '--json', ...flags]);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { key: string; action: string; incomplete: boolean });
  };

  it('runs the spec example (hot → warm, those criteria): dry run, plan hash, re-encoded, verified, switched, source deleted', async () => {
    const f = fixture('spec');
    const job = ['pipelines/jobs/hot-to-warm.yaml', '--min-size', '0', '--now', '2027-06-01T00:00:00Z'];
    const dry = earthmem(f, ['migrate', f.pipeline, ...job, '--dry-run']);
    assert.equal(dry.status, 0, dry.stderr);
    const hash = /^plan ([0-9a-f]{16}): (\d+) objects/m.exec(dry.stdout);
    assert.ok(hash, dry.stdout);
    const hot = (await codex(f).listObjects({ tier: 'hot' })).filter((r) => r.memoryType === 'TemperatureMemory');
    assert.equal(Number(hash[2]), hot.length);
    assert.ok(hot.length > 0);
    for (const r of hot) assert.match(dry.stdout, new RegExp(`^hot → warm +${r.bytes}  ${r.key.replace(/[.]/g, '\\.')}$`, 'm'));
    // The spec's min_size (100MB) selects none of the demo's objects: the plan says so.
    const asWritten = earthmem(f, ['migrate', f.pipeline, 'pipelines/jobs/hot-to-warm.yaml', '--dry-run', '--now', '2027-06-01T00:00:00Z']);
    assert.match(asWritten.stdout, /^plan [0-9a-f]{16}: 0 objects/m);
    assert.equal((await codex(f).listObjects({ tier: 'warm' })).some((r) => r.memoryType === 'TemperatureMemory'), false, 'a dry run moves nothing');

    const wrong = earthmem(f, ['migrate', f.pipeline, ...job, '--plan', '0000000000000000']);
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /the catalog changed since plan 0000000000000000 was made/);

    const run = earthmem(f, ['migrate', f.pipeline, ...job, '--plan', hash[1]!]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`job hot-to-warm: completed .*\\n  progress 100\\.0%: ${hot.length} of ${hot.length} objects`));
    const status = JSON.parse(earthmem(f, ['migrate', 'status', f.pipeline, 'hot-to-warm', '--json']).stdout);
    assert.equal(status.state, 'completed');
    assert.equal(status.objects_done, hot.length);
    assert.equal(status.bytes_migrated, hot.reduce((n, r) => n + r.bytes, 0));
    assert.equal(status.progress_percentage, 100);

    const rows = await assertExactlyOnce(f);
    const moved = rows.filter((r) => r.memoryType === 'TemperatureMemory');
    assert.deepEqual(moved.map((r) => r.tier), hot.map(() => 'warm'));
    for (const r of moved) {
      assert.equal(r.codec, 'lz4_raw', 'warm compression');
      assert.ok(r.uri.includes('/data/warm/'), r.uri);
      const source = hot.find((h) => h.key === r.key)!;
      assert.equal(r.createdAt, source.createdAt, 'created time kept');
      assert.deepEqual([r.rows, r.timeMinUs, r.timeMaxUs, r.bbox], [source.rows, source.timeMinUs, source.timeMaxUs, source.bbox]);
      assert.ok(!existsSync(source.uri), `source deleted: ${source.uri}`);
    }
    assert.deepEqual(gc(f), [], 'nothing left behind');
    // Running the finished job again is a no-op.
    const again = earthmem(f, ['migrate', f.pipeline, ...job]);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /resuming, 0 of \d+ objects still to do/);
  });

  it('recompresses to the destination level (hot zstd low → cold zstd high) through the library API', async () => {
    const f = fixture('recompress');
    const c = codex(f);
    const hot = await c.listObjects({ tier: 'hot' });
    const status = await c.executeMigration({ id: 'to-cold', source_tier: 'hot', destination_tier: 'cold' });
    assert.equal(status.state, 'completed');
    assert.deepEqual(await c.getMigrationStatus('to-cold'), status);
    const cold = await c.listObjects({ tier: 'cold', memoryType: 'TemperatureMemory' });
    assert.equal(cold.length, hot.length);
    for (const r of cold) {
      const source = hot.find((h) => h.key === r.key)!;
      assert.equal(r.codec, 'zstd');
      assert.equal(r.codecLevel, 9);
      assert.ok(r.bytes < source.bytes, `${r.key}: ${r.bytes} bytes at zstd 9, ${source.bytes} at zstd 1`);
    }
    await assertExactlyOnce(f);
  });

  for (const point of ['migration.copying', 'migration.put', 'migration.copied', 'migration.verified', 'migration.switched']) {
    const raw = point === 'migration.copying';
    it(`kill -9 at ${point}, then the same job again: 0 lost, 0 visible twice, nothing left behind`, async () => {
      const f = fixture(point.replace('.', '-'));
      // copying: a streamed raw copy (hot → glacier, same codec); the others re-encode (hot → cold).
      const to = raw ? 'glacier' : 'cold';
      const job = ['--id', 'crash', '--source-tier', 'hot', '--destination-tier', to, '--concurrency', '1'];
      const crashed = earthmem(f, ['migrate', f.pipeline, ...job], { EARTHMEM_FAILPOINT: point });
      assert.equal(crashed.signal, 'SIGKILL', `${crashed.stdout}${crashed.stderr}`);
      const resumed = earthmem(f, ['migrate', f.pipeline, ...job]);
      assert.equal(resumed.status, 0, resumed.stderr);
      assert.match(resumed.stderr, /migration crash: resuming/);
      const rows = await assertExactlyOnce(f);
      assert.deepEqual(rows.filter((r) => r.tier === 'hot'), [], 'every hot object moved');
      for (const r of rows.filter((r) => r.tier === to)) assert.ok(existsSync(r.uri), r.uri);
      // A crash inside a put leaves that put's temporary file: gc names it an unfinished write and removes it.
      const left = gc(f);
      assert.deepEqual(left.map((o) => o.incomplete), raw ? [true] : []);
      if (raw) {
        assert.deepEqual(gc(f, '--delete').map((o) => o.action), ['deleted']);
        assert.deepEqual(gc(f), []);
      }
    });
  }

  it('a flipped byte at the destination fails the object and leaves the source intact', async () => {
    const f = fixture('corrupt');
    const job = ['--id', 'corrupt', '--source-tier', 'hot', '--destination-tier', 'cold', '--concurrency', '1', '--memory-types', 'TemperatureMemory'];
    const crashed = earthmem(f, ['migrate', f.pipeline, ...job], { EARTHMEM_FAILPOINT: 'migration.copied' });
    assert.equal(crashed.signal, 'SIGKILL');
    const journal = new Database(join(f.dir, 'data/catalog.sqlite'), { readonly: true });
    const copied = journal.prepare("SELECT source_key, written FROM migration_steps WHERE state = 'copied'").get() as { source_key: string; written: string };
    journal.close();
    const copy = (JSON.parse(copied.written) as { uri: string }).uri;
    const bytes = readFileSync(copy);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    writeFileSync(copy, bytes);

    const resumed = earthmem(f, ['migrate', f.pipeline, ...job]);
    assert.equal(resumed.status, 1, resumed.stdout);
    assert.match(resumed.stdout, /job corrupt: failed/);
    const status = await codex(f).getMigrationStatus('corrupt');
    assert.equal(status.objects_failed, 1);
    assert.equal(status.errors[0]!.key, copied.source_key);
    assert.match(status.errors[0]!.error, /does not verify: sha256 [0-9a-f]+, expected [0-9a-f]+; the source is left as it was/);
    const [source] = await codex(f).listObjects({ tier: 'hot', key: copied.source_key });
    assert.equal(source!.state, 'committed');
    assert.ok(existsSync(source!.uri), 'the source is intact');
    assert.ok(!existsSync(copy), 'the bad copy is gone');
    await assertExactlyOnce(f);
    assert.deepEqual(gc(f), []);
  });

  it('cancel stops a job and deletes its unswitched copies', async () => {
    const f = fixture('cancel');
    const job = ['--id', 'stopped', '--source-tier', 'hot', '--destination-tier', 'cold', '--concurrency', '1'];
    assert.equal(earthmem(f, ['migrate', f.pipeline, ...job], { EARTHMEM_FAILPOINT: 'migration.verified' }).signal, 'SIGKILL');
    const cancel = earthmem(f, ['migrate', 'cancel', f.pipeline, 'stopped', '--json']);
    assert.equal(cancel.status, 0, cancel.stderr);
    assert.equal(JSON.parse(cancel.stdout).state, 'cancelled');
    const again = earthmem(f, ['migrate', f.pipeline, ...job]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /job stopped was cancelled/);
    await assertExactlyOnce(f);
    assert.deepEqual(gc(f), []);
  });

  it('never deletes a source under retention: the object moves, its source stays until the retention ends', async () => {
    const f = fixture('retained');
    // glacier becomes immutable for 10 years, as in the spec's glacier tier.
    writeFileSync(f.pipeline, readFileSync(f.pipeline, 'utf8').replace('      compression: { algorithm: zstd, level: low }\n\ncatalog:', '      compression: { algorithm: zstd, level: low }\n      backup_policy: { immutable: true, retention_period: 10years }\n\ncatalog:'));
    const c = codex(f);
    assert.equal((await c.executeMigration({ id: 'in', source_tier: 'hot', destination_tier: 'glacier' })).state, 'completed');
    const glacier = await c.listObjects({ tier: 'glacier' });
    const status = await c.executeMigration({ id: 'out', source_tier: 'glacier', destination_tier: 'cold' });
    assert.equal(status.state, 'completed');
    assert.equal(status.retained.length, glacier.length);
    for (const r of status.retained) assert.match(r.note, /is immutable until \d{4}-\d\d-\d\dT.*\(backup_policy\.retention_period\); delete refused/);
    for (const r of glacier) assert.ok(existsSync(r.uri), `retained source kept: ${r.uri}`);
    assert.deepEqual(await c.listObjects({ tier: 'glacier' }), [], 'the catalog points at the copies');
    await assertExactlyOnce(f);
    const left = gc(f, '--delete');
    assert.equal(left.length, glacier.length);
    for (const o of left) assert.match(o.action, /^retained: .* is immutable until/);
  });

  it('shows a progress bar on a terminal', () => {
    const f = fixture('tty');
    // script(1) gives the job a pseudo-terminal, as a person running it would have.
    const command = [process.execPath, 'bin/earthmem.js', 'migrate', f.pipeline, '--id', 'tty', '--source-tier', 'hot', '--destination-tier', 'cold', '--concurrency', '1']
      .map((a) => `'${a}'`)
      .join(' ');
    const r = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', env: f.env });
    assert.equal(r.status, 0, r.stdout);
    assert.match(r.stdout, /\r\x1b\[2K\[#*\.*\] \d+\.\d%  \d+\/\d+ objects/);
    assert.match(r.stdout, /job tty: completed/);
  });

  it('validates job files like pipeline files: file, line, key and what was expected', () => {
    const f = fixture('bad-job');
    const bad = join(f.dir, 'bad.yaml');
    writeFileSync(bad, 'source_tier: hot\ndestination_tier: hot\nselection_criteria:\n  time_before: last tuesday\n  colour: red\n');
    const r = earthmem(f, ['migrate', f.pipeline, bad]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`${bad}:2:\\d+: destination_tier: is the source_tier`));
    assert.match(r.stderr, /:4:\d+: selection_criteria\.time_before: expected an RFC 3339 time/);
    assert.match(r.stderr, /:5:\d+: selection_criteria\.colour: unknown key/);
    const flags = earthmem(f, ['migrate', f.pipeline, '--source-tier', 'hot', '--destination-tier', 'cold', '--validation', 'false']);
    assert.equal(flags.status, 1);
    assert.match(flags.stderr, /validation: must be true with delete_after_migration/);
  });
});

describe('MigrationJob between rows and objects (pipelines/dev.yaml with GeoParquet warm and cold: SQLite + SpatiaLite hot ↔ GeoParquet warm)', () => {
  it('moves every row into GeoParquet objects read by pyarrow, empties the SQLite tier, and moves them back as rows', async () => {
    const dir = tempDir('rows-to-objects');
    const input = join(dir, 'in.ndjson');
    await writeSample(input, { points: 8_000, features: 60, badCopies: 0, seed: 9 });
    const env = { ...process.env, EARTHMEM_DATA: join(dir, 'data'), EARTHMEM_INPUT: input };
    // dev.yaml's warm and cold tiers as GeoParquet: moving rows into Zarr stores is not built yet.
    const pipeline = join(dir, 'dev-parquet.yaml');
    writeFileSync(pipeline, readFileSync('pipelines/dev.yaml', 'utf8').replace(/format: zarr(\n\s+compression: zstd\n\s+compression_level: 9)?/g, 'format: geoparquet').replace(/\n\s+(#[^\n]*\n\s+)?vector_backend:\n(\s+(type|base_path|format): [^\n]*\n){3}/g, '\n'));
    const run = spawnSync(process.execPath, ['bin/earthmem.js', 'run', pipeline], { env, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const codex = MemoryCodex.fromFile(pipeline, { env });
    const hot = await codex.listObjects({ tier: 'hot' });
    assert.ok(hot.length > 0 && hot.every((r) => r.backend === 'sqlite'));
    const status = await codex.executeMigration({ id: 'rows-out', source_tier: 'hot', destination_tier: 'warm' });
    assert.equal(status.state, 'completed', JSON.stringify(status.errors));
    const rows = await codex.listObjects();
    assert.deepEqual(rows.filter((r) => r.tier === 'hot'), []);
    const moved = rows.filter((r) => hot.some((h) => h.key.replace(/\.rows$/, '.parquet') === r.key));
    assert.equal(moved.length, hot.length);
    for (const r of moved) assert.equal(r.format, 'parquet');
    const check = checkParquet(rows.map((r) => r.uri));
    assert.equal(check.duckdb_count, 8_060);
    const ids = check.files.flatMap((file) => file.ids as string[]).sort();
    assert.deepEqual(ids, [...Array.from({ length: 8_000 }, (_, i) => `obs-${i}`), ...Array.from({ length: 60 }, (_, i) => `fire-${i}`)].sort());
    const db = new Database(join(dir, 'data/hot_memory.db'), { readonly: true });
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '%memory%'").all() as { name: string }[];
    for (const { name } of tables) assert.equal((db.prepare(`SELECT count(*) AS n FROM "${name}"`).get() as { n: number }).n, 0, name);
    db.close();

    // And back up: GeoParquet objects become SpatiaLite rows again (data that warms up).
    const back = await codex.executeMigration({ id: 'rows-in', source_tier: 'warm', destination_tier: 'hot' });
    assert.equal(back.state, 'completed', JSON.stringify(back.errors));
    const after = await codex.listObjects();
    assert.deepEqual(after.filter((r) => r.tier === 'warm'), []);
    const ids2: string[] = [];
    for (const row of after.filter((r) => r.tier === 'hot')) {
      assert.equal(row.format, 'sqlite-rows');
      const content = await codex.read(row.key, { tier: 'hot' });
      assert.equal(content.kind, 'records');
      if (content.kind === 'records') ids2.push(...content.records.map((r) => r.id!));
    }
    const cold = after.filter((r) => r.tier === 'cold');
    const coldIds = checkParquet(cold.map((r) => r.uri)).files.flatMap((file) => file.ids as string[]);
    assert.deepEqual([...ids2, ...coldIds].sort(), ids, 'every id exactly once, in SpatiaLite rows or cold objects');
  });
});

describe('MigrationJob lanes', () => {
  it('more objects than lanes, steps that end at once: no lane runs past the last step', async () => {
    // Three objects no longer in the catalog, two lanes: each step fails at once (catalog calls
    // only). A lane that checked "steps left" before its progress look must check again after it,
    // or it takes a step past the end (it threw "Cannot read properties of undefined").
    const dir = tempDir('migration-lanes');
    const catalog = new SqliteCatalog(join(dir, 'catalog.sqlite'));
    await catalog.createMigrationJob(
      { id: 'lanes', spec: { id: 'lanes', source_tier: 'hot', destination_tier: 'cold' }, planHash: '0000000000000000' },
      [1, 2, 3].map((i) => ({ sourceTier: 'hot', sourceKey: `gone-${i}.parquet`, destinationTier: 'cold', bytes: 1 })),
    );
    await catalog.close();
    const tier = (name: string, level: string) => ({ primary_backend: { type: 'local_file' as const, base_path: join(dir, name), format: 'parquet' as const }, compression: { algorithm: 'zstd' as const, level: level as 'low' } });
    const codex = new MemoryCodex({
      source: { type: 'file', path: join(dir, 'none.ndjson') },
      classify: { rules: [{ match: { variable: 'temperature' }, memory_type: 'TemperatureMemory' }] },
      storage: { tier_configs: { hot: tier('hot', 'low'), cold: tier('cold', 'high') } },
      catalog: { type: 'sqlite', path: join(dir, 'catalog.sqlite') },
      dead_letter: { type: 'local_file', path: join(dir, 'dead-letter.ndjson') },
    });
    const status = await codex.executeMigration({ id: 'lanes', source_tier: 'hot', destination_tier: 'cold', concurrency: 2 });
    assert.equal(status.state, 'failed');
    assert.deepEqual(status.errors.map((e) => e.error), [1, 2, 3].map((i) => `planned: hot/gone-${i}.parquet is no longer in the catalog`));
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('MigrationJob memory', () => {
  it('moves a 1 GiB object (streamed copy and read-back) with peak RSS under 300 MB', async () => {
    const dir = tempDir('big-object');
    const pipeline = pipelineWithGlacier(dir);
    const env = { ...process.env, EARTHMEM_DATA: join(dir, 'data'), EARTHMEM_DEMO_INPUT: join(dir, 'none.ndjson') };
    // A 1 GiB object in hot, catalogued like any other (its bytes are never decoded: same codec both ends).
    const key = 'ObservationMemory/2024/03/big/part-000000000000000000000000.parquet';
    const file = join(dir, 'data/hot', key);
    mkdirSync(dirname(file), { recursive: true });
    const chunk = randomBytes(1 << 20);
    const digest = createHash('sha256');
    const out = openSync(file, 'w');
    for (let i = 0; i < 1024; i++) {
      chunk.writeUInt32LE(i, 0);
      digest.update(chunk);
      writeSync(out, chunk);
    }
    closeSync(out);
    const catalog = new SqliteCatalog(join(dir, 'data/catalog.sqlite'));
    await catalog.upsert([{
      key, tier: 'hot', backend: 'local_file', uri: file, memoryType: 'ObservationMemory', dataset: 'big', kind: 'point', partitionPath: '2024/03/big',
      format: 'parquet', codec: 'zstd', codecLevel: 1, bytes: 1 << 30, rows: 1, timeMinUs: 0, timeMaxUs: 0, bbox: [0, 0, 0, 0],
      sha256: digest.digest('hex'), provenance: [{ source: 'big', partition: 0, firstOffset: 0, lastOffset: 0, count: 1 }], state: 'committed',
    }]);
    await catalog.close();
    const script = `
      import { MemoryCodex } from ${JSON.stringify(resolve('dist/src/codex/memory-codex.js'))};
      const status = await MemoryCodex.fromFile(${JSON.stringify(pipeline)}).executeMigration({ id: 'big', source_tier: 'hot', destination_tier: 'glacier' });
      console.log(JSON.stringify({ state: status.state, errors: status.errors, rssMiB: process.resourceUsage().maxRSS / 1024 }));`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env });
    assert.equal(run.status, 0, run.stderr);
    const result = JSON.parse(run.stdout) as { state: string; errors: unknown[]; rssMiB: number };
    assert.equal(result.state, 'completed', JSON.stringify(result.errors));
    assert.ok(result.rssMiB < 300, `peak RSS ${result.rssMiB.toFixed(0)} MiB`);
    assert.ok(!existsSync(file), 'the source is deleted');
    const [moved] = await MemoryCodex.fromFile(pipeline, { env }).listObjects({ tier: 'glacier' });
    assert.equal(statSync(moved!.uri).size, 1 << 30);
    rmSync(dir, { recursive: true, force: true });
  });
});
