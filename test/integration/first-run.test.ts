import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { tempDir } from '../support/fixtures.js';

/**
 * What a new user runs first, the way CI runs it: a fresh clone (the tracked files, no data/, no
 * dist/), `npm start`, and `npm start` again. `npm ci` is not repeated here: node_modules comes
 * from this checkout (CI's own run of the README's commands covers `npm ci` itself).
 */
describe('first run on a fresh clone', () => {
  it('npm start builds, generates the sample, runs the embedded default, says where the output went; a second run changes nothing', () => {
    const clone = join(tempDir('clone'), 'earth-memory');
    const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { encoding: 'utf8' }).split('\0').filter(Boolean);
    for (const file of files) {
      if (!existsSync(file)) continue; // deleted in the working tree, not yet committed
      mkdirSync(join(clone, dirname(file)), { recursive: true });
      cpSync(file, join(clone, file));
    }
    assert.ok(!existsSync(join(clone, 'data')) && !existsSync(join(clone, 'dist')));
    symlinkSync(resolve('node_modules'), join(clone, 'node_modules'));
    // A clean environment: none of the test run's settings (EARTHMEM_DATA…) leak into the demo.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EARTHMEM_') && !k.startsWith('npm_')));

    // Before any build, the CLI says what to do instead of failing with ERR_MODULE_NOT_FOUND.
    const unbuilt = spawnSync(process.execPath, ['bin/earthmem.js', '--help'], { cwd: clone, encoding: 'utf8', env });
    assert.equal(unbuilt.status, 1);
    assert.match(unbuilt.stderr, /earthmem: not built: .*dist\/src\/cli\/main\.js is missing\.\nRun "npm run build"/);
    assert.doesNotMatch(unbuilt.stderr, /ERR_MODULE_NOT_FOUND/);

    const start = () => spawnSync('npm', ['start'], { cwd: clone, encoding: 'utf8', env, timeout: 300_000 });
    const first = start();
    assert.equal(first.status, 0, `npm start: ${first.stdout}\n${first.stderr}`);
    assert.match(first.stdout, /^output:$/m);
    assert.match(first.stdout, /^records in: +120,633 /m);
    assert.match(first.stdout, /^written: +120,600$/m);
    for (const tier of ['hot', 'warm', 'cold']) assert.match(first.stdout, new RegExp(`^  ${tier} +${join(clone, 'data/demo', tier)} `, 'm'));
    assert.doesNotMatch(first.stdout, /warning:/, 'the embedded default writes no small objects');
    assert.ok(existsSync(join(clone, 'data/demo/observations.ndjson')));

    const objects = () =>
      walk(join(clone, 'data/demo'))
        .filter((f) => f.endsWith('.parquet'))
        .map((f) => `${f} ${createHash('sha256').update(readFileSync(f)).digest('hex')}`)
        .sort();
    const catalogRows = () => {
      const db = new Database(join(clone, 'data/demo/catalog.sqlite'), { readonly: true });
      try {
        return (db.prepare('SELECT count(*) AS n FROM objects').get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    const before = { objects: objects(), rows: catalogRows() };
    const objectCount = Number(/^objects: +([\d,]+),/m.exec(first.stdout)![1]!.replace(/,/g, ''));
    assert.equal(before.objects.length, objectCount);
    assert.equal(before.rows, objectCount);
    const rowsPerObject = 120_600 / objectCount;
    assert.ok(rowsPerObject >= 1_000, `${rowsPerObject} rows per object`);

    const second = start();
    assert.equal(second.status, 0, `second npm start: ${second.stdout}\n${second.stderr}`);
    assert.doesNotMatch(second.stderr, /generating the sample/, 'the sample is reused');
    assert.deepEqual(objects(), before.objects, 'same objects, same bytes');
    assert.equal(catalogRows(), before.rows, 'the catalog does not grow');

    const npx = spawnSync('npx', ['--no-install', 'earthmem', '--version'], { cwd: clone, encoding: 'utf8', env });
    assert.equal(npx.status, 0, npx.stderr);
    assert.match(npx.stdout, /^earthmem \d+\.\d+\.\d+/);
  });
});

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    return statSync(full).isDirectory() ? walk(full) : [full];
  });
}
