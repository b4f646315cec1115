#!/usr/bin/env node
// `npm test`: bring up the real services the suite needs (idempotent, cached), export their
// settings (`scripts/services env`), then run every compiled test file with node's test runner:
// dist/test/** and each connector's own tests (dist/connectors/*/**.test.js).
// EARTHMEM_TEST_SERVICES="postgres kafka" limits the services; arguments filter test files.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const services = (process.env.EARTHMEM_TEST_SERVICES ?? '').split(/[ ,]+/).filter(Boolean);
execFileSync('scripts/services', ['up', ...services], { stdio: 'inherit' });
// Let bash undo its own quoting (connection strings carry ; and =), then read the environment.
const dump = execFileSync('bash', ['-c', 'eval "$(scripts/services env --export)" && env -0'], { encoding: 'utf8' });
const env = { ...process.env };
for (const entry of dump.split('\0')) {
  const eq = entry.indexOf('=');
  if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
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
const files = [...testFiles('dist/test'), ...testFiles('dist/connectors')].filter(
  (f) => filter.length === 0 || filter.some((p) => f.includes(p)),
);
const result = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files], { stdio: 'inherit', env });
process.exit(result.status ?? 1);
