/**
 * Zarr appends under kill -9: a run killed at each crash point of an append (after its intent,
 * mid-chunks, before the consolidated metadata, after it, after the catalog row), then run again,
 * leaves stores whose every key is byte-identical to a run without the crash, that xarray opens,
 * with the same catalog rows and nothing left behind for gc.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { MemoryCodex } from '../../src/index.js';
import { writeSample } from '../../src/records/sample.js';
import { tempDir } from '../support/fixtures.js';
import { runToCompletion, storeFiles } from '../support/zarr.js';
import { checkZarr } from '../support/python.js';

const base = tempDir('zarr-kill');
const input = join(base, 'in.ndjson');

function pipeline(dir: string, format: 2 | 3): string {
  const file = join(dir, 'pipeline.yaml');
  writeFileSync(
    file,
    `source: { type: file, path: ${input} }
classify:
  rules:
    - { match: { kind: point }, memory_type: StationMemory }
  default: dead_letter
batch: { max_rows: 150, encode_workers: 0 }
storage:
  tier_configs:
    warm:
      primary_backend: { type: zarr, store_path: ${join(dir, 'warm')}, zarr_format: ${format}, timeseries_chunks: [8, 64], time_step: 1h }
routing: { default: warm }
catalog: { type: sqlite, path: ${join(dir, 'catalog.sqlite')} }
dead_letter: { type: local_file, path: ${join(dir, 'dead.ndjson')} }
`,
  );
  return file;
}

async function catalogRows(file: string) {
  return (await MemoryCodex.fromFile(file).listObjects()).map((r) => `${r.key} ${r.format} ${r.rows} ${r.sha256} ${r.bytes} ${JSON.stringify(r.provenance)}`).sort();
}

for (const format of [2, 3] as const) {
  describe(`Zarr v${format} appends killed at every crash point`, () => {
    const reference = join(base, `reference-v${format}`);
    let expected: Record<string, string>;
    let expectedRows: string[];
    before(async () => {
      await writeSample(input, { points: 2_400, features: 0, stations: 12, days: 3, badCopies: 0, seed: 5 }).catch(() => undefined);
      mkdirSync(reference, { recursive: true });
      const ok = runToCompletion(pipeline(reference, format));
      assert.equal(ok.status, 0, ok.stderr);
      expected = storeFiles(reference);
      expectedRows = await catalogRows(join(reference, 'pipeline.yaml'));
      assert.ok(Object.keys(expected).length > 20, Object.keys(expected).join(' '));
      assert.ok(!Object.keys(expected).some((k) => k.includes('earthmem-append')), 'no intent left after a clean run');
    });

    for (const point of ['zarr.intent@2', 'zarr.chunk@5', 'zarr.chunk@23', 'zarr.metadata@3', 'zarr.committed@4', 'zarr.catalogued@6']) {
      it(`killed at ${point}, then run again: same bytes, same catalog, readable`, async () => {
        const dir = tempDir(`zarr-kill-${point.replace(/[^a-z0-9]/gi, '-')}`);
        const file = pipeline(dir, format);
        const killed = runToCompletion(file, point);
        assert.equal(killed.signal, 'SIGKILL', `${killed.status} ${killed.stderr}`);
        const again = runToCompletion(file);
        assert.equal(again.status, 0, again.stderr);
        assert.deepEqual(storeFiles(dir), expected);
        assert.deepEqual(await catalogRows(file), expectedRows);
        const rows = await MemoryCodex.fromFile(file).listObjects();
        for (const row of rows) {
          const got = checkZarr(row.uri);
          const values = Object.values(got.values).reduce((n, v) => n + v.data.flat().filter((x) => x !== null).length, 0);
          assert.equal(values, row.rows, row.key);
        }
        const gc = spawnSync(process.execPath, ['bin/earthmem.js', 'gc', file, '--grace', '0s', '--json'], { encoding: 'utf8' });
        assert.equal(gc.status, 0, gc.stderr);
        const orphans = gc.stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as { key: string; incomplete: boolean });
        assert.deepEqual(orphans.filter((o) => !o.incomplete), [], 'nothing but a killed put\'s temporary file is uncatalogued');
      });
    }
  });
}
