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
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { tempDir } from '../support/fixtures.js';
import { brokers, deadLetters, kcat, killWorkers } from '../support/kafka.js';
import { ownKafka, type OwnKafka } from '../support/own-kafka.js';
import { deadLetterLines, type Scenario } from '../support/kafka-scenario.js';
import { describeFigures, fillDisk, rideOutOutage } from '../support/outage.js';

describe('fault: the dead-letter sink unavailable mid-stream', () => {
  const mount = join(tempDir('dl-down'), 'disk');
  let mounted = false;
  let broker: OwnKafka | undefined;
  afterEach(killWorkers);
  after(async () => {
    if (mounted) execFileSync('umount', ['-l', mount]);
    await broker?.stop();
  });

  it("the dead-letter topic's broker killed for 40 s: nothing acknowledged past an undurable dead letter, then each bad record once, 0 lost", { timeout: 600_000 }, async (t) => {
    broker = await ownKafka();
    const own = broker;
    let scenario: Scenario | undefined;
    let killedAt = 0;
    let committedWhileDown: Map<number, number> | undefined;
    const figures = await rideOutOutage({
      name: 'dlk-down',
      service: {
        label: `the dead-letter topic's own broker ${own.brokers}`,
        down: async () => {
          killedAt = Date.now();
          await own.kill();
        },
        up: async () => {
          committedWhileDown = await committedOffsets(scenario!);
          await own.start();
        },
      },
      downMs: 40_000,
      target: /^dead letter kafka/,
      deadLetter: (s) => {
        scenario = s;
        return { config: { type: 'kafka', brokers: own.brokers, topic: s.env.EARTHMEM_DEAD_LETTER_TOPIC }, read: () => deadLetters(s.env.EARTHMEM_DEAD_LETTER_TOPIC, own.brokers) };
      },
    });
    t.diagnostic(describeFigures(figures));
    // Sent after the broker was killed, so not durable while it was down.
    const late = sentAfter(scenario!.env.EARTHMEM_DEAD_LETTER_TOPIC, own.brokers, killedAt);
    assert.ok(late.length > 0, 'some bad records were read while the dead-letter broker was down');
    for (const d of late) {
      const committed = committedWhileDown!.get(d.partition) ?? 0;
      assert.ok(committed <= d.offset, `partition ${d.partition}: committed ${committed} passed offset ${d.offset}, whose dead letter was not durable`);
    }
    t.diagnostic(`${late.length} bad records waited for the dead-letter broker; committed offsets meanwhile: ${[...committedWhileDown!].map(([p, o]) => `${p}:${o}`).join(' ')}`);
  });

  it('the dead-letter file on a full tmpfs for 40 s: records wait for their dead letter: nothing acknowledged past an undurable dead letter, then each bad record once, 0 lost', { timeout: 600_000 }, async (t) => {
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
        down: () => fillDisk(filler),
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
        return { config: { type: 'local_file', path: file }, read: () => deadLetterLines(file) };
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

/** Dead letters the broker got after `sinceMs` (their CreateTime): partition and offset of their source record. */
function sentAfter(topic: string, on: string, sinceMs: number): { partition: number; offset: number }[] {
  const out = execFileSync(kcat(), ['-b', on, '-C', '-t', topic, '-e', '-q', '-o', 'beginning', '-f', '%T %h\n'], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.length > 0)
    .map((line) => {
      const [time, headers] = [Number(line.slice(0, line.indexOf(' '))), line.slice(line.indexOf(' ') + 1)];
      const h = new Map(headers.split(',').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
      return { time, partition: Number(h.get('earthmem.partition')), offset: Number(h.get('earthmem.offset')) };
    })
    .filter((d) => d.time > sinceMs);
}

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

