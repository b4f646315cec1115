/**
 * The dead-letter sink unavailable mid-stream: a dead-letter file on a small tmpfs mounted by the
 * test, filled up for 40 s (ENOSPC). A record is acknowledged only once its dead letter is durable:
 * while the sink fails, no partition's committed offset passes a bad record that is not in the
 * file; the flush retries under `dead_letter.retry`, the run goes on by itself once space returns,
 * and each bad record ends in the file once (a failed append that wrote part of its lines is
 * read back, not appended twice).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { tempDir } from '../support/fixtures.js';
import { brokers, killWorkers } from '../support/kafka.js';
import { deadLetterLines, type Scenario } from '../support/kafka-scenario.js';
import { describeFigures, rideOutOutage } from '../support/outage.js';

describe('fault: the dead-letter file unwritable (disk full) mid-stream', () => {
  const mount = join(tempDir('dl-down'), 'disk');
  let mounted = false;
  afterEach(killWorkers);
  after(() => {
    if (mounted) execFileSync('umount', ['-l', mount]);
  });

  it('records wait for their dead letter: nothing acknowledged past an undurable dead letter, then each bad record once, 0 lost', { timeout: 600_000 }, async (t) => {
    if (process.getuid?.() !== 0) throw new Error(`the dead-letter-down test mounts a tmpfs and must run as root (uid ${process.getuid?.()})`);
    mkdirSync(mount, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mount]);
    mounted = true;
    const file = join(mount, 'dead-letter.ndjson');
    const filler = join(mount, 'filler');
    let scenario: Scenario | undefined;
    let snapshot: { committed: Map<number, number>; durable: Set<string> } | undefined;
    const figures = await rideOutOutage({
      name: 'dl-down',
      service: {
        label: `dead-letter file on a full tmpfs`,
        down: () => fill(filler),
        up: async () => {
          // What was acknowledged while the sink failed, against what the file held.
          snapshot = { committed: await committedOffsets(scenario!), durable: new Set(deadLetterLines(file).map((d) => `${d.partition}:${d.offset}`)) };
          rmSync(filler);
        },
      },
      downMs: 40_000,
      target: /^dead letter local_file/,
      deadLetter: (s) => {
        scenario = s;
        return { type: 'local_file', path: file };
      },
    });
    t.diagnostic(describeFigures(figures));
    const unacked = deadLetterLines(file).filter((d) => !snapshot!.durable.has(`${d.partition}:${d.offset}`));
    assert.ok(unacked.length > 0, 'some bad records were read while the dead letter was failing');
    for (const d of unacked) {
      const committed = snapshot!.committed.get(d.partition) ?? 0;
      assert.ok(committed <= d.offset, `partition ${d.partition}: committed ${committed} passed offset ${d.offset}, whose dead letter was not durable`);
    }
    t.diagnostic(`${unacked.length} bad records waited for the dead letter; committed offsets then: ${[...snapshot!.committed].map(([p, o]) => `${p}:${o}`).join(' ')}`);
  });
});

async function committedOffsets(s: Scenario): Promise<Map<number, number>> {
  const admin = new Kafka({ brokers: brokers().split(','), clientId: 'earthmem-test', logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const [topic] = await admin.fetchOffsets({ groupId: s.env.EARTHMEM_GROUP, topics: [s.env.EARTHMEM_TOPIC] });
    return new Map(topic!.partitions.map((p) => [p.partition, Math.max(0, Number(p.offset))]));
  } finally {
    await admin.disconnect();
  }
}

/** Writes until the file system is full (ENOSPC); the filler keeps what fitted. */
function fill(path: string): void {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(16 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
}
