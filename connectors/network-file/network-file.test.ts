import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError } from '../../src/core/errors.js';
import { backendConformance } from '../../test/conformance/backend-suite.js';
import { networkFileBackendSchema } from './config.js';
import { NetworkFileStorage } from './storage.js';

/**
 * This machine's kernel has no NFS or CIFS client, so the share is a real tmpfs mount made by
 * the test (root); the protocol, server and option checks run against mountinfo as the kernel
 * reports it, and against a mountinfo fixture describing an NFS export.
 */
const share = mkdtempSync(join(tmpdir(), 'earthmem-share-'));
const readOnly = mkdtempSync(join(tmpdir(), 'earthmem-ro-'));
const plainDir = mkdtempSync(join(tmpdir(), 'earthmem-plain-'));

function mount(args: string[]): void {
  try {
    execFileSync('mount', args, { stdio: 'pipe' });
  } catch (error) {
    throw new Error(`the network_file tests mount a tmpfs and need root (CAP_SYS_ADMIN): mount ${args.join(' ')} failed: ${(error as Error).message}`);
  }
}

const config = (extra: Record<string, unknown>) => networkFileBackendSchema.parse({ type: 'network_file', protocol: 'local', mount_point: share, ...extra });

before(() => {
  mount(['-t', 'tmpfs', '-o', 'size=256m', 'earthmem-share', share]);
  mount(['-t', 'tmpfs', '-o', 'ro,size=1m', 'earthmem-ro', readOnly]);
});
after(() => {
  for (const dir of [share, readOnly]) execFileSync('umount', [dir]);
});

backendConformance({ name: 'network_file', open: async () => NetworkFileStorage.open(config({ base_path: 'tier' })) });

describe('network_file mount checks', () => {
  it('refuses a folder that is not a mount point', async () => {
    await assert.rejects(NetworkFileStorage.open(config({ mount_point: plainDir })), (e: unknown) => e instanceof ConfigError && /is not a mount point/.test(e.message));
  });

  it('refuses a mount of another protocol', async () => {
    await assert.rejects(NetworkFileStorage.open(config({ protocol: 'nfs' })), /is a tmpfs mount, expected nfs or nfs4 for protocol nfs/);
    await assert.rejects(NetworkFileStorage.open(config({ protocol: 'smb' })), /expected cifs or smb3/);
  });

  it('refuses a read-only mount', async () => {
    await assert.rejects(NetworkFileStorage.open(config({ mount_point: readOnly })), /mounted read-only/);
  });

  it('checks server, remote path and connection options of an NFS mount', async () => {
    const fixture = join(plainDir, 'mountinfo');
    writeFileSync(fixture, `812 25 0:61 / ${share} rw,relatime shared:400 - nfs4 fileserver.example.com:/exports/earth_data rw,vers=4.2,rsize=1048576,wsize=524288,actimeo=600\n`);
    const nfs = { protocol: 'nfs', server: 'fileserver.example.com', remote_path: '/exports/earth_data' };
    const storage = await NetworkFileStorage.open(config({ ...nfs, connection_options: { rsize: 1048576, wsize: 1048576, actimeo: 600 } }), fixture);
    assert.deepEqual(storage.warnings, [`network_file mount_point ${share}: connection option wsize=1048576 wanted, mounted with wsize=524288`]);
    await assert.rejects(NetworkFileStorage.open(config({ ...nfs, server: 'other.example.com' }), fixture), /not from server other\.example\.com/);
    await assert.rejects(NetworkFileStorage.open(config({ ...nfs, remote_path: '/exports/other' }), fixture), /not from remote_path/);
  });
});
