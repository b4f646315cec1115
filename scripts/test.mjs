#!/usr/bin/env node
// `npm test`: bring up the real services the suite needs (idempotent, cached), export their
// settings (`scripts/services env`), then run every compiled test file with node's test runner:
// dist/test/**, each connector's own tests (dist/connectors/*/**.test.js) and each format's own tests
// (dist/src/**, e.g. dist/src/encoders/cog/*.test.js), then the fault tests
// (dist/test/faults/**) on their own.
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
const files = [...testFiles('dist/test'), ...testFiles('dist/connectors'), ...testFiles('dist/src')].filter(
  (f) => filter.length === 0 || filter.some((p) => f.includes(p)),
);
// Fault tests stop shared services: they run after every other test file, so no other test
// sees an outage. Each stops a server only its own run uses (S3, GCS, Azurite, a Redis, broker
// or disk of its own), so those run side by side; the broker and the catalog serve every fault
// test's worker, so their restarts run last, alone.
const isFault = (f) => f.startsWith(join('dist', 'test', 'faults'));
const stopsEveryonesServer = (f) => /(broker-restart|catalog-restart)\.test\.js$/.test(f);
let failed = false;
// Bounded, so a hang fails the suite with a name instead of running into CI's limit: a test
// past TEST_TIMEOUT_MS fails (its file's after-hooks kill its workers), and a group past its
// limit is killed.
const TEST_TIMEOUT_MS = 10 * 60_000;
const minutes = 60_000;
const groups = [
  { name: 'tests', files: files.filter((f) => !isFault(f)), flags: [], limitMs: 40 * minutes },
  { name: 'fault tests', files: files.filter((f) => isFault(f) && !stopsEveryonesServer(f)), flags: ['--test-concurrency=3'], limitMs: 15 * minutes },
  { name: 'restart tests', files: files.filter((f) => isFault(f) && stopsEveryonesServer(f)), flags: ['--test-concurrency=1'], limitMs: 15 * minutes },
];
for (const group of groups) {
  if (group.files.length === 0) continue;
  const result = spawnSync(process.execPath, ['--test', '--test-reporter=spec', `--test-timeout=${TEST_TIMEOUT_MS}`, ...group.flags, ...group.files], {
    stdio: 'inherit',
    env,
    timeout: group.limitMs,
    killSignal: 'SIGKILL',
  });
  if (result.error?.code === 'ETIMEDOUT') console.error(`npm test: the ${group.name} ran past ${group.limitMs / minutes} min and were killed`);
  if (result.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
