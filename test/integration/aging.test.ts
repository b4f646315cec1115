/**
 * The aging stream (issue #11): a year of observations ages through hot → warm → cold → glacier
 * in monthly `earthmem age --once --now …` passes; dry run, status, validation, two planners at
 * once, and a planner killed in the middle of a pass.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { MemoryCodex } from '../../src/codex/memory-codex.js';
import { writeSample } from '../../src/records/sample.js';
import { tempDir } from '../support/fixtures.js';
import { checkParquet } from '../support/python.js';

const POINTS = 24_000;
const FEATURES = 120;
const DAY = 86_400_000;

function pipeline(dir: string, input: string, extra = ''): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'pipeline.yaml');
  const tier = (name: string, codec: string) =>
    `    ${name}: { primary_backend: { type: local_file, base_path: ${join(dir, 'data', name)} }, compression: ${codec} }\n`;
  writeFileSync(
    file,
    `source: { type: file, path: ${input} }
classify:
  rules:
    - { match: { variable: temperature }, memory_type: TemperatureMemory }
    - { match: { kind: vector }, memory_type: HazardMemory }
  default: ObservationMemory
storage:
  tier_configs:
${tier('hot', '{ algorithm: zstd, level: low }')}${tier('warm', '{ algorithm: lz4 }')}${tier('cold', '{ algorithm: zstd, level: high }')}${tier('glacier', '{ algorithm: zstd, level: high }')}catalog: { type: sqlite, path: ${join(dir, 'data/catalog.sqlite')} }
dead_letter: { type: local_file, path: ${join(dir, 'data/dead.ndjson')} }
aging:
  interval: 10m
  min_residence: 0s
${extra}  policies:
    - { name: hot-to-warm, source_tier: hot, destination_tier: warm, selection_criteria: { time_before: 30 days ago } }
    - { name: warm-to-cold, source_tier: warm, destination_tier: cold, selection_criteria: { time_before: 90 days ago } }
    - { name: cold-to-glacier, source_tier: cold, destination_tier: glacier, selection_criteria: { time_before: 180 days ago } }
`,
  );
  return file;
}

/** Where the policies above put an object whose newest observation is `timeMaxUs`, at `now`. */
function expectedTier(timeMaxUs: number, now: number): string {
  const t = timeMaxUs / 1000;
  return t < now - 180 * DAY ? 'glacier' : t < now - 90 * DAY ? 'cold' : t < now - 30 * DAY ? 'warm' : 'hot';
}

const expectedIds = [...Array.from({ length: POINTS }, (_, i) => `obs-${i}`), ...Array.from({ length: FEATURES }, (_, i) => `fire-${i}`)].sort();

describe('aging streams', () => {
  const base = tempDir('aging');
  const input = join(base, 'in.ndjson');
  before(async () => {
    await writeSample(input, { points: POINTS, features: FEATURES, badCopies: 0, seed: 12, start: '2024-01-01T00:00:00Z', days: 366 });
  });
  const earthmem = (args: string[], env: NodeJS.ProcessEnv = {}) => spawnSync(process.execPath, ['bin/earthmem.js', ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  const ingest = (dir: string, extra = '') => {
    const file = pipeline(dir, input, extra);
    const run = earthmem(['run', file]);
    assert.equal(run.status, 0, run.stderr);
    return file;
  };
  const assertExactlyOnce = async (file: string) => {
    const rows = await MemoryCodex.fromFile(file).listObjects();
    const check = checkParquet(rows.map((r) => r.uri));
    assert.deepEqual(check.files.flatMap((f) => f.ids as string[]).sort(), expectedIds, 'every id exactly once through the catalog');
    return rows;
  };
  const gc = (file: string, env: NodeJS.ProcessEnv = {}) => JSON.parse(`[${earthmem(['gc', file, '--grace', '0s', '--json'], env).stdout.trim().split('\n').filter(Boolean).join(',')}]`) as unknown[];

  it('a year in one test: monthly passes put every object in the tier its policies say, nothing lost or left behind', async () => {
    const dir = join(base, 'year');
    const file = ingest(dir);
    for (let month = 2; month <= 13; month++) {
      const now = Date.UTC(2024, month - 1, 1);
      const pass = earthmem(['age', file, '--once', '--now', new Date(now).toISOString(), '--json']);
      assert.equal(pass.status, 0, pass.stderr);
      const report = JSON.parse(pass.stdout) as { ran: boolean; policies: { policy: string; moved_objects: number; failed: number; note: string }[] };
      assert.equal(report.ran, true);
      for (const p of report.policies) {
        assert.equal(p.failed, 0, p.note);
        assert.match(p.note, p.moved_objects > 0 ? /^moved \d+ of \d+ objects/ : /^moved nothing: /, 'a pass says what it did, or why it did nothing');
      }
      const rows = await assertExactlyOnce(file);
      for (const r of rows) assert.equal(r.tier, expectedTier(r.timeMaxUs, now), `${new Date(now).toISOString()}: ${r.key} (time_max ${new Date(r.timeMaxUs / 1000).toISOString()})`);
      assert.deepEqual(gc(file), [], 'nothing left behind in a source tier');
    }
    const rows = await MemoryCodex.fromFile(file).listObjects();
    assert.ok(rows.some((r) => r.tier === 'glacier') && rows.some((r) => r.tier === 'cold') && rows.some((r) => r.tier === 'warm'));
    const status = JSON.parse(earthmem(['age', 'status', file, '--json']).stdout) as { policies: { policy: string; moved_objects: number; last_run: string; next_run: string; stuck: unknown[] }[] };
    for (const p of status.policies) {
      assert.ok(p.moved_objects > 0, p.policy);
      assert.equal(p.last_run, '2025-01-01T00:00:00.000Z');
      assert.equal(p.next_run, '2025-01-01T00:10:00.000Z');
      assert.deepEqual(p.stuck, []);
    }
  });

  it('the embedded default ages a year of data: every object in the tier its policies say, small objects merged, every id once', async () => {
    const dir = join(base, 'demo-year');
    // Small batches, so the year arrives as many small objects; no minimum residence between the monthly passes.
    mkdirSync(dir, { recursive: true });
    const demo = join(dir, 'demo.yaml');
    writeFileSync(demo, readFileSync('pipelines/demo.yaml', 'utf8').replace('max_rows: 50000', 'max_rows: 200'));
    const env = { EARTHMEM_DEMO_INPUT: input, EARTHMEM_DATA: join(dir, 'data'), EARTHMEM_MIN_RESIDENCE: '0s' };
    const run = earthmem(['run', demo], env);
    assert.equal(run.status, 0, run.stderr);
    const codex = MemoryCodex.fromFile(demo, { env: { ...process.env, ...env } });
    const ingested = await codex.listObjects();
    const routed: Record<string, string> = { TemperatureMemory: 'hot', PrecipitationMemory: 'warm', AtmosphereMemory: 'warm', HazardMemory: 'cold' };
    const order = ['hot', 'warm', 'cold'];
    for (let month = 2; month <= 13; month++) {
      const now = Date.UTC(2024, month - 1, 1);
      const pass = earthmem(['age', demo, '--once', '--now', new Date(now).toISOString(), '--json'], env);
      assert.equal(pass.status, 0, pass.stderr);
      const rows = await codex.listObjects();
      const check = checkParquet(rows.map((r) => r.uri));
      assert.deepEqual(check.files.flatMap((f) => f.ids as string[]).sort(), expectedIds, `${new Date(now).toISOString()}: every id exactly once`);
      for (const r of rows) {
        const t = r.timeMaxUs / 1000;
        const byAge = t < now - 180 * DAY ? 'cold' : t < now - 30 * DAY ? 'warm' : 'hot';
        const expected = order[Math.max(order.indexOf(routed[r.memoryType]!), order.indexOf(byAge))];
        assert.equal(r.tier, expected, `${new Date(now).toISOString()}: ${r.key}`);
      }
      assert.deepEqual(gc(demo, env), [], 'nothing left behind');
    }
    // Every aged partition path of TemperatureMemory now holds one merged object, where it held several.
    const temperature = (await codex.listObjects({ memoryType: 'TemperatureMemory' })).filter((r) => r.tier !== 'hot');
    const before = ingested.filter((r) => r.memoryType === 'TemperatureMemory' && temperature.some((t) => t.partitionPath === r.partitionPath));
    const paths = new Set(temperature.map((r) => r.partitionPath));
    assert.equal(temperature.length, paths.size, 'one object per aged partition path');
    assert.ok(before.length > paths.size, `small objects merged: ${before.length} → ${temperature.length}`);
  });

  it('runs inside earthmem run on its interval: objects age while the pipeline still writes', async () => {
    const dir = join(base, 'in-run');
    mkdirSync(dir, { recursive: true });
    const big = join(dir, 'in.ndjson');
    await writeSample(big, { points: 150_000, features: 0, badCopies: 0, seed: 4, start: '2024-01-01T00:00:00Z', days: 366 });
    // A pass every 300 ms; the sample is from 2024, so hot-to-warm selects every finished object.
    const file = pipeline(dir, big);
    writeFileSync(file, readFileSync(file, 'utf8').replace('interval: 10m', 'interval: 300ms'));
    const run = earthmem(['run', file]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /aging hot-to-warm \(hot → warm\): moved \d+ of \d+ objects/);
    const rows = await MemoryCodex.fromFile(file).listObjects();
    assert.ok(rows.some((r) => r.tier !== 'hot'), 'objects moved while the run was on');
    const check = checkParquet(rows.map((r) => r.uri));
    const ids = check.files.flatMap((f) => f.ids as string[]);
    assert.equal(ids.length, 150_000);
    assert.equal(new Set(ids).size, 150_000, 'every record exactly once');
  });

  it('promotes on access: objects read often move back up, and stay put for the minimum residence', async () => {
    const dir = join(base, 'promote');
    const file = ingest(dir);
    writeFileSync(
      file,
      readFileSync(file, 'utf8')
        .replace('interval: 10m', 'interval: 1s')
        .replace('min_residence: 0s', 'min_residence: 8s')
        .replace(
          '    - { name: warm-to-cold,',
          '    - { name: promote-on-read, source_tier: [cold, warm], destination_tier: hot, selection_criteria: { accessed_at_least: 3 times in 1 day } }\n    - { name: warm-to-cold,',
        )
        .replace(/\n {4}- \{ name: warm-to-cold[^\n]*\n {4}- \{ name: cold-to-glacier[^\n]*/, ''),
    );
    assert.equal(earthmem(['validate', file]).status, 0, earthmem(['validate', file]).stderr);
    // Objects written just now are not moved before the minimum residence (wall-clock time, so it
    // leaves a loaded machine seconds per command).
    const early = JSON.parse(earthmem(['age', file, '--once', '--json']).stdout) as { policies: { policy: string; note: string }[] };
    assert.match(early.policies.find((p) => p.policy === 'hot-to-warm')!.note, /moved nothing: .*min_residence \(in hot since before .*\) leaves out \d+/);
    await new Promise((r) => setTimeout(r, 8_200));
    assert.equal(earthmem(['age', file, '--once']).status, 0);
    const warm = await MemoryCodex.fromFile(file).listObjects({ tier: 'warm' });
    assert.ok(warm.length > 1);
    // One object is read three times (each `earthmem get` records its read).
    const read = warm[0]!;
    for (let i = 0; i < 3; i++) assert.equal(earthmem(['get', file, read.key, '--out', join(dir, 'read.parquet')]).status, 0);
    assert.equal((await MemoryCodex.fromFile(file).listObjects({ key: read.key }))[0]!.accessCount, 3);
    // Not yet: it entered warm less than min_residence ago.
    const soon = JSON.parse(earthmem(['age', file, '--once', '--json']).stdout) as { policies: { policy: string; moved_objects: number }[] };
    assert.equal(soon.policies.find((p) => p.policy === 'promote-on-read')!.moved_objects, 0);
    await new Promise((r) => setTimeout(r, 8_200));
    const pass = JSON.parse(earthmem(['age', file, '--once', '--json']).stdout) as { policies: { policy: string; source_tier: string; moved_objects: number }[] };
    assert.equal(pass.policies.find((p) => p.policy === 'promote-on-read' && p.source_tier === 'warm')!.moved_objects, 1);
    const rows = await assertExactlyOnce(file);
    assert.deepEqual(rows.filter((r) => r.tier === 'hot').map((r) => r.key), [read.key], 'the read object is back in hot, the others stay warm');
    // Straight after the promotion, hot-to-warm leaves it where it is: no flapping.
    const after = JSON.parse(earthmem(['age', file, '--once', '--json']).stdout) as { policies: { policy: string; note: string }[] };
    assert.match(after.policies.find((p) => p.policy === 'hot-to-warm')!.note, /moved nothing: .*min_residence/);
    assert.equal((await MemoryCodex.fromFile(file).listObjects({ key: read.key }))[0]!.tier, 'hot');
  });

  it('compacts small objects while moving and in place: every id once, and a replay afterwards adds nothing', async () => {
    const dir = join(base, 'compact');
    const file = pipeline(dir, input);
    // Small batches: many small objects per partition path, as a slow stream would write.
    writeFileSync(
      file,
      readFileSync(file, 'utf8')
        .replace('storage:', 'batch: { max_rows: 50 }\nstorage:')
        .replace('{ name: hot-to-warm, source_tier: hot, destination_tier: warm, selection_criteria: { time_before: 30 days ago } }', '{ name: hot-to-warm, source_tier: hot, destination_tier: warm, selection_criteria: { time_before: 120 days ago }, compact: { target_rows: 5000 } }')
        .replace(/\n {4}- \{ name: warm-to-cold[^\n]*\n {4}- \{ name: cold-to-glacier[^\n]*/, '\n    - { name: compact-hot, source_tier: hot, destination_tier: hot, compact: { target_rows: 5000 } }'),
    );
    const run = earthmem(['run', file]);
    assert.equal(run.status, 0, run.stderr);
    const before = await MemoryCodex.fromFile(file).listObjects();
    assert.ok(before.length > 60, `${before.length} small objects`);

    // A planner killed in the middle of merging: the next pass finishes it.
    const killed = earthmem(['age', file, '--once', '--now', '2024-08-01T00:00:00Z'], { EARTHMEM_FAILPOINT: 'migration.copied@2' });
    assert.equal(killed.signal, 'SIGKILL');
    const pass = earthmem(['age', file, '--once', '--now', '2024-08-01T00:00:00Z', '--json']);
    assert.equal(pass.status, 0, pass.stderr);
    const rows = await assertExactlyOnce(file);
    const warm = rows.filter((r) => r.tier === 'warm');
    const hot = rows.filter((r) => r.tier === 'hot');
    const movedBefore = before.filter((r) => r.timeMaxUs / 1000 < Date.parse('2024-08-01T00:00:00Z') - 120 * DAY);
    assert.ok(warm.length > 0 && warm.length * 3 < movedBefore.length, `${movedBefore.length} objects merged into ${warm.length}`);
    assert.ok(hot.length * 3 < before.length - movedBefore.length, `hot compacted in place: ${before.length - movedBefore.length} → ${hot.length}`);
    for (const r of [...warm, ...hot]) {
      assert.ok(r.rows <= 5000, `${r.key}: ${r.rows} rows`);
      assert.equal(r.provenance.length, 1, 'a merged object covers one offset range');
    }
    assert.deepEqual(gc(file), [], 'merged sources deleted, nothing left behind');

    // Replaying the input: the merged objects cover their records, in whichever tier they are.
    const replay = earthmem(['run', file]);
    assert.equal(replay.status, 0, replay.stderr);
    const after = await assertExactlyOnce(file);
    assert.deepEqual(after.map((r) => `${r.tier} ${r.key} ${r.sha256}`).sort(), rows.map((r) => `${r.tier} ${r.key} ${r.sha256}`).sort(), 'the same objects, the same bytes');
    assert.deepEqual(gc(file), []);
  });

  it('a dry run lists exactly the objects a pass would move, and moves nothing', async () => {
    const dir = join(base, 'dry');
    const file = ingest(dir);
    const now = '2024-06-15T00:00:00Z';
    const dry = earthmem(['age', file, '--dry-run', '--now', now, '--json']);
    assert.equal(dry.status, 0, dry.stderr);
    const report = JSON.parse(dry.stdout) as { policies: { policy: string; objects: { key: string; bytes: number }[] }[] };
    const hot = await MemoryCodex.fromFile(file).listObjects({ tier: 'hot' });
    const due = hot.filter((r) => r.timeMaxUs / 1000 < Date.parse(now) - 30 * DAY).map((r) => [r.key, r.bytes]).sort();
    assert.deepEqual(report.policies.find((p) => p.policy === 'hot-to-warm')!.objects.map((o) => [o.key, o.bytes]).sort(), due);
    assert.ok(due.length > 0);
    assert.deepEqual((await MemoryCodex.fromFile(file).listObjects({ tier: 'hot' })).length, hot.length, 'nothing moved');
    const text = earthmem(['age', file, '--dry-run', '--now', now]);
    assert.match(text.stdout, /hot-to-warm \(hot → warm\): would move \d+ objects, \d+ bytes \(plan [0-9a-f]{16}\)\n {4}hot → warm +\d+ {2}\S+\.parquet/);
  });

  it('validate rejects what a pass could not run: a cycle, a destination that is a source, an unknown tier, a bad duration', () => {
    const dir = tempDir('aging-bad');
    const good = readFileSync(pipeline(dir, input), 'utf8');
    const validate = (edit: (yaml: string) => string) => {
      const bad = join(dir, 'bad.yaml');
      writeFileSync(bad, edit(good));
      const r = earthmem(['validate', bad]);
      assert.equal(r.status, 1, r.stdout);
      return r.stderr;
    };
    assert.match(validate((y) => y.replace('interval: 10m', 'interval: soon')), /bad\.yaml:\d+:\d+: aging\.interval: expected a duration/);
    assert.match(
      validate((y) => y.replace('source_tier: warm, destination_tier: cold', 'source_tier: [warm, attic], destination_tier: cold')),
      /aging\.policies\.1\.source_tier\.1: expected one of "hot", "warm", "cold", "glacier"/,
    );
    assert.match(validate((y) => y.replace('source_tier: warm, destination_tier: cold', 'source_tier: warm, destination_tier: warm')), /aging\.policies\.1\.destination_tier: is one of the policy's source tiers/);
    assert.match(
      validate((y) => y.replace('source_tier: cold, destination_tier: glacier', 'source_tier: cold, destination_tier: hot')),
      /aging\.policies\.0: policy "hot-to-warm" is part of a cycle \(hot → warm and back\) and min_residence is shorter than interval: an object could move back and forth within one interval/,
    );
    // With objects staying in a tier at least an interval (the default min_residence, 1 day), the cycle is fine.
    const cycle = join(dir, 'cycle.yaml');
    writeFileSync(cycle, good.replace('  min_residence: 0s\n', '').replace('source_tier: cold, destination_tier: glacier', 'source_tier: cold, destination_tier: hot'));
    assert.equal(earthmem(['validate', cycle]).status, 0);
    assert.match(validate((y) => y.replace('name: warm-to-cold', 'name: hot-to-warm')), /aging\.policies\.1\.name: "hot-to-warm" is also the name of policy 0/);
  });

  it('two planners at once: one holds the lease, no object moves twice', async () => {
    const dir = join(base, 'two');
    // A slow pass (throttled) so the second planner starts while the first holds the lease.
    const file = ingest(dir, '  max_bytes_per_second: 40KB\n');
    const now = '2024-08-01T00:00:00Z';
    const start = () => spawn(process.execPath, ['bin/earthmem.js', 'age', file, '--once', '--now', now, '--json'], { env: process.env });
    const collect = (child: ReturnType<typeof start>) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        let out = '';
        child.stdout.on('data', (d) => (out += d));
        child.on('close', (code) => resolve({ code, out }));
      });
    const first = collect(start());
    await new Promise((r) => setTimeout(r, 1500));
    const passes = await Promise.all([first, collect(start())]);
    for (const p of passes) assert.equal(p.code, 0, p.out);
    // Whichever took the lease first ran the pass; the other found it held and did nothing.
    const [ran, refused] = [passes.filter((p) => JSON.parse(p.out).ran), passes.filter((p) => !JSON.parse(p.out).ran)];
    assert.equal(ran.length, 1, passes.map((p) => p.out).join('\n'));
    assert.equal(refused.length, 1);
    assert.match(JSON.parse(refused[0]!.out).note, /another planner holds the aging lease/);
    await assertExactlyOnce(file);
    assert.deepEqual(gc(file), []);
  });

  it('a planner killed in the middle of a pass: the next pass finishes the job, nothing lost or duplicated', async () => {
    const dir = join(base, 'kill');
    const file = ingest(dir);
    const now = '2024-08-01T00:00:00Z';
    const killed = earthmem(['age', file, '--once', '--now', now], { EARTHMEM_FAILPOINT: 'migration.verified@3' });
    assert.equal(killed.signal, 'SIGKILL');
    // An hour later (stuck_after is 10 minutes), the status names the stuck job, object and step.
    const later = new Date(Date.now() + 3_600_000).toISOString();
    const status = JSON.parse(earthmem(['age', 'status', file, '--now', later, '--json']).stdout) as { policies: { policy: string; stuck: { job: string; key: string; state: string }[] }[] };
    const stuck = status.policies.find((p) => p.policy === 'hot-to-warm')!.stuck;
    assert.equal(stuck.length, 1, JSON.stringify(status));
    assert.match(stuck[0]!.job, /^aging\.hot-to-warm\.hot\./);
    // Lanes run side by side: another object may have been switched and wait for its source's delete.
    assert.match(stuck[0]!.state, /^(planned|copied|verified|switched)$/);
    // The dead planner's lease does not hold the next one back: its process is gone.
    const next = earthmem(['age', file, '--once', '--now', now]);
    assert.equal(next.status, 0, next.stderr);
    assert.match(next.stderr, /aging hot-to-warm: resuming aging\.hot-to-warm\.hot\.\S+ \(running\)/);
    const rows = await assertExactlyOnce(file);
    for (const r of rows) assert.equal(r.tier, expectedTier(r.timeMaxUs, Date.parse(now)), r.key);
    assert.deepEqual(gc(file), []);
  });
});
