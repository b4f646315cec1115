import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { writeSample } from '../../src/records/sample.js';
import { tempDir } from '../support/fixtures.js';

const repo = resolve('.');
const fixture = resolve('test/package');

/**
 * The package as a user gets it: `npm pack`, installed into a scratch project from the tarball
 * (dependencies from the registry, as for any user), type-checked against the published `.d.ts`
 * and run with the user's own code.
 */
describe('the npm package', () => {
  it('installs from its tarball and works as a typed library and as `npx earthmem`', async () => {
    const dir = tempDir('package');
    // dist/ is already built by `npm test`; --ignore-scripts keeps pack from rebuilding it under running tests.
    const tarball = execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], { cwd: repo, encoding: 'utf8' }).trim().split('\n').pop()!;
    const files = execFileSync('tar', ['tzf', join(dir, tarball)], { encoding: 'utf8' }).split('\n');
    assert.ok(files.includes('package/dist/src/index.d.ts'), 'types are packed');
    assert.ok(files.includes('package/bin/earthmem.js'));
    assert.ok(files.includes('package/pipelines/demo.yaml'));
    assert.ok(!files.some((f) => f.includes('/test/') || f.endsWith('.test.js')), 'no tests in the package');

    const project = join(dir, 'project');
    cpSync(fixture, project, { recursive: true });
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'scratch', version: '1.0.0', type: 'module', private: true }));
    const npm = (args: string[]) => execFileSync('npm', args, { cwd: project, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const typesNode = JSON.parse(readFileSync('node_modules/@types/node/package.json', 'utf8')).version as string;
    npm(['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', join(dir, tarball), `@types/node@${typesNode}`]);
    // better-sqlite3 has no prebuilt binary here and compiles from source (~90 s): reuse the build
    // `npm ci` made for this very version and Node, and compile only if the versions differ.
    const version = (root: string) => JSON.parse(readFileSync(join(root, 'node_modules/better-sqlite3/package.json'), 'utf8')).version;
    if (version(project) === version(repo)) {
      cpSync(join(repo, 'node_modules/better-sqlite3/build'), join(project, 'node_modules/better-sqlite3/build'), { recursive: true });
    } else {
      npm(['rebuild', 'better-sqlite3']);
    }

    // The user's TypeScript, strict, against the package's types only (no paths into dist/).
    const tsc = spawnSync(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: project, encoding: 'utf8' });
    assert.equal(tsc.status, 0, `tsc: ${tsc.stdout}${tsc.stderr}`);

    const input = join(project, 'in.ndjson');
    await writeSample(input, { points: 5_000, features: 20, badCopies: 1 });
    const run = spawnSync(process.execPath, ['use.js', input, join(project, 'out')], { cwd: project, encoding: 'utf8' });
    assert.equal(run.status, 0, `use.js: ${run.stdout}${run.stderr}`);
    const report = JSON.parse(run.stdout) as {
      invalid: string[]; written: number; deadLettered: number; objects: number; listed: number; rows: number; firstBytes: string;
      migration: { state: string; done: number; progress: number }; warm: string[];
    };
    assert.ok(report.invalid.some((m) => /storage\.tier_configs\.hot\.primary_backend\.type: expected one of/.test(m)), report.invalid.join('\n'));
    // classify.default keeps the unclassified record, and max_record_bytes (1 MiB) the large one.
    assert.equal(report.written, 5_022);
    assert.equal(report.deadLettered, 9);
    assert.equal(report.listed, report.objects);
    assert.equal(report.rows, 5_022);
    assert.equal(report.firstBytes, 'PAR1', 'read() returns the stored Parquet');
    assert.deepEqual(report.migration.state, 'completed');
    assert.equal(report.migration.progress, 100);
    assert.ok(report.migration.done > 0 && report.warm.length === report.migration.done && report.warm.every((t) => t === 'TemperatureMemory'), JSON.stringify(report));
    assert.ok(existsSync(join(project, 'out/hot')) && readdirSync(join(project, 'out/hot')).length > 0);

    const npx = spawnSync('npx', ['--no-install', 'earthmem', '--version'], { cwd: project, encoding: 'utf8' });
    assert.equal(npx.status, 0, npx.stderr);
    assert.equal(npx.stdout.trim(), `earthmem ${JSON.parse(readFileSync('package.json', 'utf8')).version}`);
    const validate = spawnSync('npx', ['--no-install', 'earthmem', 'validate', 'node_modules/earth-memory/pipelines/demo.yaml'], { cwd: project, encoding: 'utf8' });
    assert.equal(validate.status, 0, validate.stderr);
  });
});
