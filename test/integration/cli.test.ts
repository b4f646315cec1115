import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeSample } from '../../src/records/sample.js';
import { tempDir } from '../support/fixtures.js';

const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, ['bin/earthmem.js', ...args], { encoding: 'utf8', env: { ...process.env, ...env } });

describe('earthmem CLI', () => {
  it('behaves like a Unix tool: help on stdout (0), usage errors on stderr (2), --version', () => {
    const help = cli(['--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /^Usage:$/m);
    assert.equal(help.stderr, '');
    const none = cli([]);
    assert.equal(none.status, 2);
    assert.equal(none.stdout, '');
    assert.match(none.stderr, /^earthmem: missing COMMAND\n\n.*Usage:/s);
    const unknown = cli(['frobnicate']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown command: frobnicate/);
    const badOption = cli(['catalog', 'ls', 'pipelines/demo.yaml', '--colour']);
    assert.equal(badOption.status, 2);
    assert.match(badOption.stderr, /^earthmem catalog: Unknown option '--colour'.*\n\nUsage:\n {2}earthmem catalog ls/s);
    const badCount = cli(['generate', 'x.ndjson', '--points', 'many']);
    assert.equal(badCount.status, 2);
    assert.match(badCount.stderr, /bad --points: many/);
    const commandHelp = cli(['replay', '--help']);
    assert.equal(commandHelp.status, 0);
    assert.match(commandHelp.stdout, /earthmem replay PIPELINE\.yaml --from-beginning/);
    const produceHelp = cli(['produce', '-h']);
    assert.equal(produceHelp.status, 0);
    assert.match(produceHelp.stdout, /^Usage: earthmem produce/);
    const version = cli(['--version']);
    assert.equal(version.status, 0);
    assert.equal(version.stdout, `earthmem ${JSON.parse(readFileSync('package.json', 'utf8')).version}\n`);
  });

  it('validate accepts the shipped pipelines', () => {
    const r = cli(['validate', 'pipelines/demo.yaml']);
    assert.equal(r.status, 0, r.stderr);
  });

  it('validate names the file, key path, line and what was expected, and exits 1', () => {
    const dir = tempDir('cli');
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      readFileSync('pipelines/demo.yaml', 'utf8')
        .replace('max_rows: 50000', 'max_rows: -3')
        .replace('format: ndjson', 'format: ndjson\n  colour: blue')
        .replace('${EARTHMEM_DATA:-data/demo}/catalog.sqlite', '${CATALOG_DIR}/catalog.sqlite'),
    );
    const r = cli(['validate', file], { CATALOG_DIR: '' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`${file}:\\d+:\\d+: batch.max_rows: Number must be greater than 0`));
    assert.match(r.stderr, /source.colour: unknown key/);
    assert.match(r.stderr, /catalog.path: environment variable CATALOG_DIR is not set/);
  });

  it('run drains on SIGTERM: open batches flushed, everything read is acknowledged, exit 0', async () => {
    const dir = tempDir('drain');
    const input = join(dir, 'in.ndjson');
    await writeSample(input, { points: 600_000, features: 0, badCopies: 1 });
    const env = { ...process.env, EARTHMEM_DEMO_INPUT: input, EARTHMEM_DATA: join(dir, 'out') };
    const child = spawn(process.execPath, ['bin/earthmem.js', 'run', 'pipelines/demo.yaml'], { env });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    setTimeout(() => child.kill('SIGTERM'), 1500);
    const code = await new Promise((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, stdout);
    assert.doesNotMatch(stdout, /WARNING/);
    const read = Number(/records in:\s+([\d,]+)/.exec(stdout)![1]!.replace(/,/g, ''));
    const written = Number(/written:\s+([\d,]+)/.exec(stdout)![1]!.replace(/,/g, ''));
    const dead = Number(/dead-lettered:\s+([\d,]+)/.exec(stdout)![1]!.replace(/,/g, ''));
    assert.ok(read > 0 && read < 600_011, `stopped early (read ${read})`);
    assert.equal(written + dead, read);

    const ls = cli(['catalog', 'ls', 'pipelines/demo.yaml', '--json'], { EARTHMEM_DEMO_INPUT: input, EARTHMEM_DATA: join(dir, 'out') });
    assert.equal(ls.status, 0, ls.stderr);
    const rows = ls.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(rows.reduce((n, r) => n + r.rows, 0), written);
    for (const key of ['key', 'uri', 'tier', 'memory_type', 'dataset', 'format', 'rows', 'bytes', 'sha256', 'time_min', 'time_max', 'bbox']) {
      assert.ok(key in rows[0], key);
    }
    const hot = cli(['catalog', 'ls', 'pipelines/demo.yaml', '--tier', 'hot'], { EARTHMEM_DATA: join(dir, 'out') });
    assert.match(hot.stdout, /TemperatureMemory/);
    assert.doesNotMatch(hot.stdout, /warm /);
  });
});
