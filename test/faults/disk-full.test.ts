/**
 * Disk full on a local tier: every tier of a Kafka stream on a small tmpfs mounted by the test,
 * filled up mid-stream by a filler file for 40 s. Writes fail with ENOSPC, which the local_file
 * backend calls retriable: the run pauses (nothing acknowledged past what is durable), says once
 * which tier and path are full, and continues by itself once the filler is deleted. No partial
 * (temporary) file is left, and every file on the disk is a catalogued object.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { tempDir } from '../support/fixtures.js';
import { catalogRows, killWorkers } from '../support/kafka.js';
import { describeFigures, fillDisk, rideOutOutage } from '../support/outage.js';

const SIZE = '16m';

describe('fault: disk full on the local tiers mid-stream', () => {
  const mount = join(tempDir('disk-full'), 'disk');
  let mounted = false;
  afterEach(killWorkers);
  after(() => {
    if (mounted) execFileSync('umount', ['-l', mount]);
  });

  it('ENOSPC pauses the run, one line names the tier and path, and it continues once space returns: 0 lost, 0 duplicated, no partial file', { timeout: 600_000 }, async (t) => {
    if (process.getuid?.() !== 0) throw new Error(`the disk-full test mounts a tmpfs and must run as root (uid ${process.getuid?.()})`);
    mkdirSync(mount, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${SIZE}`, 'tmpfs', mount]);
    mounted = true;
    const filler = join(mount, 'filler');
    const figures = await rideOutOutage({
      name: 'disk-full',
      service: { label: `tmpfs ${mount} (${SIZE}) full`, down: () => fillDisk(filler), up: () => rmSync(filler) },
      downMs: 40_000,
      target: /^local_file tier (hot|warm|cold)/,
      backendOf: (tier) => ({ type: 'local_file', base_path: join(mount, tier) }),
    });
    t.diagnostic(describeFigures(figures));
    const full = figures.retryLog.filter((l) => /ENOSPC: no space left under /.test(l) && /: retrying \(for up to /.test(l));
    assert.ok(full.length >= 1, `a line names the full tier and its path:\n${figures.retryLog.join('\n')}`);
    assert.ok(full.every((l) => l.includes(mount)), full.join('\n'));

    const files = walk(mount);
    assert.deepEqual(files.filter((f) => f.endsWith('.tmp')), [], 'no temporary file left');
    const uris = (await catalogRows(figures.scenario.env.EARTHMEM_CATALOG_SCHEMA)).map((r) => r.uri).sort();
    assert.deepEqual(files.sort(), uris, 'every file on the disk is a catalogued object');
  });
});


function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}
