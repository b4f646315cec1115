#!/usr/bin/env node
// `npm test`: bring up the real services the suite needs (idempotent, cached), export their
// settings (`scripts/services env`), then run every compiled test file with node's test runner.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const services = (process.env.EARTHMEM_TEST_SERVICES ?? 'pyref postgres kafka kcat').split(/[ ,]+/).filter(Boolean);
execFileSync('scripts/services', ['up', ...services], { stdio: 'inherit' });
const env = { ...process.env };
for (const line of execFileSync('scripts/services', ['env'], { encoding: 'utf8' }).split('\n')) {
  const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
  if (m) env[m[1]] = m[2].replace(/^'(.*)'$/, '$1');
}

function testFiles(dir) {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const full = join(dir, name);
      return statSync(full).isDirectory() ? testFiles(full) : name.endsWith('.test.js') ? [full] : [];
    });
}

const filter = process.argv.slice(2);
const files = testFiles('dist/test').filter((f) => filter.length === 0 || filter.some((p) => f.includes(p)));
const result = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files], { stdio: 'inherit', env });
process.exit(result.status ?? 1);
