import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { runPipeline } from '../../src/pipeline/run.js';
import { writeSample } from '../../src/records/sample.js';
import { checkParquet } from '../support/python.js';
import { demoConfig, tempDir } from '../support/fixtures.js';

/**
 * The small-files problem on the replay: 50,000 records from about 400 stations. The
 * embedded default keeps objects large and sorted; a per-station layout is warned about.
 */
describe('object sizes on a 50,000-record replay from 400 stations', () => {
  const dir = tempDir('small-objects');
  const input = join(dir, 'in.ndjson');
  const perStation = (yaml: string) => yaml.replace('year/month/dataset\n      compression: { algorithm: lz4', 'sensor/year/month\n      compression: { algorithm: lz4');

  before(async () => {
    await writeSample(input, { points: 50_000, features: 100, stations: 400, badCopies: 0, seed: 3 });
  });

  it('the embedded default writes ≥ 1,000 rows per object, sorted by station, variable and time, and does not warn', async () => {
    const summary = await runPipeline(demoConfig(input, join(dir, 'demo')));
    assert.equal(summary.recordsWritten, 50_100);
    assert.ok(summary.recordsWritten / summary.objects >= 1_000, `${summary.recordsWritten / summary.objects} rows per object`);
    assert.deepEqual(summary.warnings, []);

    // Read back by pyarrow: each point object's rows are in (station, variable, time) order.
    const byId = new Map<string, [string, string, number]>();
    for (const line of readFileSync(input, 'utf8').split('\n')) {
      if (!line.startsWith('{"id":"obs-')) continue;
      const r = JSON.parse(line) as { id: string; station: string; variable: string; time: string };
      byId.set(r.id, [r.station, r.variable, Date.parse(r.time)]);
    }
    const warm = summary.tiers.find((t) => t.name === 'warm')!;
    assert.ok(warm.objects > 0);
    const check = checkParquet(walkParquet(warm.uri));
    for (const file of check.files) {
      const keys = (file.ids as string[]).map((id) => byId.get(id)!);
      for (let i = 1; i < keys.length; i++) {
        const [a, b] = [keys[i - 1]!, keys[i]!];
        const ordered = a[0] < b[0] || (a[0] === b[0] && (a[1] < b[1] || (a[1] === b[1] && a[2] <= b[2])));
        assert.ok(ordered, `${file.path}: row ${i} (${b.join(' ')}) comes after (${a.join(' ')})`);
      }
    }
  });

  it('a per-station layout writes many small objects, and the summary names the segment and what to change', async () => {
    const summary = await runPipeline(demoConfig(input, join(dir, 'per-station'), perStation));
    assert.ok(summary.objects > 1_000, `${summary.objects} objects`);
    assert.equal(summary.warnings.length, 1, summary.warnings.join('\n'));
    const [warning] = summary.warnings;
    assert.match(warning!, /^tier warm wrote [\d,]+ objects and [\d,]+ of them hold fewer than 1,000 rows/);
    assert.match(warning!, /file_organization "sensor\/year\/month" splits them by its segment \{sensor\} \(400 values in this run\)/);
    assert.match(warning!, /file_organization: "\{year\}\/\{month\}"/);
  });

  it('the CLI prints the warning in the run summary, and `catalog ls --json | head -1` ends quietly', () => {
    const pipeline = join(dir, 'per-station.yaml');
    writeFileSync(pipeline, perStation(readFileSync('pipelines/demo.yaml', 'utf8')));
    const env = { ...process.env, EARTHMEM_DEMO_INPUT: input, EARTHMEM_DATA: join(dir, 'cli') };
    const run = spawnSync(process.execPath, ['bin/earthmem.js', 'run', pipeline], { encoding: 'utf8', env });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^warning: tier warm wrote .* splits them by its segment \{sensor\}/m);

    // Over a thousand JSON lines into a pipe that closes after the first: no EPIPE stack.
    const piped = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" bin/earthmem.js catalog ls "${pipeline}" --json | head -1`], { encoding: 'utf8', env });
    assert.equal(piped.stderr, '');
    assert.equal(piped.status, 0);
    assert.equal(piped.stdout.split('\n').filter(Boolean).length, 1);
    assert.ok(JSON.parse(piped.stdout).key);
  });
});

function walkParquet(dir: string): string[] {
  const out = spawnSync('find', [dir, '-name', '*.parquet'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  return out.sort();
}
