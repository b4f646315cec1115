import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Admin, Kafka } from 'kafkajs';
import { createKafka, setGroupOffsets, type KafkaLog } from '../../connectors/kafka/client.js';
import { registerCompressionCodecs } from '../../connectors/kafka/codecs.js';
import { kafkaConnectionShape, kafkaDeadLetterSchema, kafkaSourceSchema } from '../../connectors/kafka/config.js';
import { KafkaSource } from '../../connectors/kafka/source.js';
import { KafkaDeadLetterSink } from '../../connectors/kafka/dead-letter.js';
import { StorageError } from '../../src/core/errors.js';
import type { DeadLetter } from '../../src/core/record.js';
import { writeSample } from '../../src/records/sample.js';
import { tempDir } from '../support/fixtures.js';
import { z } from 'zod';

/** The real broker and kcat; a missing one fails the test, it never skips it. */
function services(): { brokers: string; kcat: string } {
  const brokers = process.env.KAFKA_BROKERS;
  assert.ok(brokers, 'KAFKA_BROKERS is not set: these tests need the real broker (scripts/services up kafka; scripts/services env)');
  const kcat = process.env.KCAT ?? '/usr/bin/kcat';
  assert.ok(existsSync(kcat), `kcat not found at ${kcat}: set KCAT (scripts/services up kcat)`);
  return { brokers, kcat };
}

const run = `${Date.now()}-${process.pid}`;
const topicName = (what: string) => `earthmem-test-${what}-${run}`;
const quiet: KafkaLog = () => {};

function kafkaClient(): Kafka {
  return createKafka(z.object(kafkaConnectionShape).parse({ brokers: services().brokers, client_id: 'earthmem-test' }), quiet);
}

let admin: Admin | undefined;
async function createTopic(topic: string): Promise<string> {
  if (!admin) {
    admin = kafkaClient().admin();
    await admin.connect();
  }
  await admin.createTopics({ topics: [{ topic, numPartitions: 4 }], waitForLeaders: true });
  return topic;
}
after(() => admin?.disconnect());

/** Runs kcat against the test broker; its stdout as bytes. */
function kcat(args: string[], input?: Buffer): Buffer {
  const { brokers, kcat: bin } = services();
  const result = spawnSync(bin, ['-b', brokers, '-q', ...args], { input, maxBuffer: 256 << 20 });
  assert.equal(result.status, 0, `kcat ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

/** Splits at `\n`; a final empty piece (after the last newline) is dropped. */
function splitLines(bytes: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  for (let end = bytes.indexOf(0x0a); end !== -1; end = bytes.indexOf(0x0a, start)) {
    lines.push(bytes.subarray(start, end));
    start = end + 1;
  }
  if (start < bytes.length) lines.push(bytes.subarray(start));
  return lines;
}

interface ReadBack {
  key: string | null;
  partition: number;
  value: Buffer;
}

/** The whole topic as kcat reads it: `%k\t%p\t%s`, `-Z` printing a null key as NULL. */
function readTopic(topic: string): ReadBack[] {
  return splitLines(kcat(['-C', '-t', topic, '-e', '-o', 'beginning', '-Z', '-f', '%k\t%p\t%s\n'])).map((line) => {
    const tab1 = line.indexOf(0x09);
    const tab2 = line.indexOf(0x09, tab1 + 1);
    const key = line.subarray(0, tab1).toString('utf8');
    return { key: key === 'NULL' ? null : key, partition: Number(line.subarray(tab1 + 1, tab2).toString()), value: line.subarray(tab2 + 1) };
  });
}

const sortBuffers = (values: Buffer[]) => [...values].sort(Buffer.compare);

/** Consumes `expected` messages from the topics with a kafkajs consumer group, from the beginning. */
async function consume(kafka: Kafka, topics: string[], expected: number): Promise<Map<string, Buffer[]>> {
  const consumer = kafka.consumer({ groupId: topicName(`group-${topics.length}`) });
  const values = new Map(topics.map((t) => [t, [] as Buffer[]]));
  let count = 0;
  let lastCrash: unknown;
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    lastCrash = payload.error;
  });
  try {
    await consumer.connect();
    await consumer.subscribe({ topics, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`consumed ${count} of ${expected} messages in 60 s; last consumer crash: ${String(lastCrash)}`)),
        60_000,
      );
      consumer
        .run({
          eachMessage: async ({ topic, message }) => {
            values.get(topic)!.push(message.value!);
            if (++count === expected) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return values;
}

/** Values that test byte exactness and the codecs: unicode, invalid UTF-8, and large frames. */
function sampleValues(): Buffer[] {
  const values: Buffer[] = [];
  for (let i = 0; i < 3000; i++) {
    values.push(Buffer.from(JSON.stringify({ i, station: `ST${i % 37}`, value: Math.sin(i), note: 'é∑😀'.repeat(i % 5) })));
  }
  values.push(Buffer.from([0x7b, 0xff, 0xfe, 0x00, 0x7d])); // not UTF-8, with a NUL
  // Several 64 KiB LZ4 blocks in one frame, most of them incompressible.
  for (let i = 0; i < 3; i++) {
    let text = '';
    for (let j = 0; text.length < 300_000; j++) text += ((i * 7919 + j) * 2654435761).toString(36);
    values.push(Buffer.from(text));
  }
  return values;
}

describe('kafka: compressed batches written by kcat (librdkafka)', () => {
  it('gzip, lz4 and zstd batches from kcat are consumed by kafkajs byte for byte', { timeout: 120_000 }, async () => {
    services();
    registerCompressionCodecs();
    const values = sampleValues();
    const input = Buffer.concat(values.flatMap((v) => [v, Buffer.from('\n')]));
    const topics: string[] = [];
    for (const codec of ['gzip', 'lz4', 'zstd']) {
      const topic = await createTopic(topicName(`kcat-${codec}`));
      // A long linger puts many records in each compressed batch.
      kcat(['-P', '-t', topic, '-z', codec, '-X', 'partitioner=murmur2_random', '-X', 'linger.ms=200', '-X', 'batch.size=4000000'], input);
      topics.push(topic);
    }
    const consumed = await consume(kafkaClient(), topics, values.length * topics.length);
    const hex = (vs: Buffer[]) => sortBuffers(vs).map((v) => v.toString('hex'));
    for (const topic of topics) assertSameList(hex(consumed.get(topic)!), hex(values), topic);
  });
});

/** `earthmem produce` through the CLI, in a child process: exit code and output. */
function produce(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['bin/earthmem.js', 'produce', ...args], { env: process.env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

interface Keyed {
  key: string | null;
  value: Buffer;
}

/** Equal lists, or a failure naming the first difference (not a dump of thousands of entries). */
function assertSameList(actual: string[], expected: string[], what: string): void {
  if (actual.length === expected.length && actual.every((a, i) => a === expected[i])) return;
  const i = actual.findIndex((a, j) => a !== expected[j]);
  assert.fail(`${what}: ${actual.length} entries, expected ${expected.length}; first difference at ${i}: ${actual[i]} ≠ ${expected[i]}`);
}

/** The file source's rules: lines end at `\n` (a `\r` before it too); whitespace-only lines are skipped. */
function expectedMessages(file: string): Keyed[] {
  return splitLines(readFileSync(file))
    .map((line) => (line[line.length - 1] === 0x0d ? line.subarray(0, -1) : line))
    .filter((line) => line.toString('utf8').trim().length > 0)
    .map((value) => ({ key: stationKey(value), value }));
}

function stationKey(line: Buffer): string | null {
  try {
    const station = JSON.parse(line.toString('utf8')).station;
    return typeof station === 'string' || typeof station === 'number' ? String(station) : null;
  } catch {
    return null; // not JSON: the CLI sends it without a key
  }
}

describe('earthmem produce', () => {
  const dir = tempDir('produce');
  const file = join(dir, 'in.ndjson');

  it('sends each line byte for byte, keyed by --key-field, placed like kcat murmur2, with every codec', { timeout: 180_000 }, async () => {
    const { brokers } = services();
    await writeSample(file, { points: 4000, features: 40, badCopies: 1, seed: 3 });
    appendFileSync(
      file,
      Buffer.concat([
        Buffer.from('\n   \t\n\u00a0\n{"station":"CRLF-1","value":1}\r\n{"station":"Zürich-é","value":2}\n{"station":12345}\n'),
        Buffer.from('{"station":1.5}\n{"station":true}\n{"value":3}\nnot json at all\n{"station":"bin","raw":"'),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('"}\n{"station":"last-line-without-newline"}'),
      ]),
    );
    const expected = expectedMessages(file);
    const keys = [...new Set(expected.map((m) => m.key).filter((k): k is string => k !== null))];
    assert.ok(keys.length > 50 && keys.includes('Zürich-é') && keys.includes('12345') && keys.includes('1.5'));

    // Where librdkafka's murmur2 puts each key on a 4-partition topic.
    const placement = await createTopic(topicName('murmur2'));
    kcat(['-P', '-t', placement, '-K', '\t', '-X', 'partitioner=murmur2_random'], Buffer.from(keys.map((k) => `${k}\tplacement\n`).join('')));
    const kcatPartition = new Map(readTopic(placement).map((m) => [m.key, m.partition]));
    assert.equal(kcatPartition.size, keys.length);
    assert.ok(new Set(kcatPartition.values()).size === 4, 'keys spread over all 4 partitions');

    for (const compression of ['none', 'gzip', 'lz4', 'zstd']) {
      const topic = await createTopic(topicName(`produce-${compression}`));
      const args = ['--brokers', brokers, '--topic', topic, '--key-field', 'station', '--compression', compression, '--batch-size', '700', file];
      const result = await produce(args);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`^sent ${expected.length} records to ${topic} in \\d+\\.\\d\\d s \\(\\d+ records/s\\)\\n$`));

      const read = readTopic(topic);
      assert.equal(read.length, expected.length, compression);
      const pairs = (ms: Keyed[]) => ms.map((m) => `${m.key}\u0000${m.value.toString('base64')}`);
      assertSameList(pairs(read).sort(), pairs(expected).sort(), `${compression}: keys and values read back by kcat`);
      for (const m of read) {
        if (m.key !== null) assert.equal(m.partition, kcatPartition.get(m.key), `${compression}: partition of key ${m.key}`);
      }
      // Each key's messages stay in file order (one partition, sends in sequence, idempotent producer).
      for (const key of keys) {
        const ofKey = (ms: Keyed[]) => pairs(ms.filter((m) => m.key === key));
        assertSameList(ofKey(read), ofKey(expected), `${compression}: order of key ${key}`);
      }
    }
  });

  it('exits 2 on usage errors and 1 on a missing file, naming the problem', { timeout: 30_000 }, async () => {
    const { brokers } = services();
    const badCodec = await produce(['--brokers', brokers, '--topic', 't', '--compression', 'snappy', file]);
    assert.equal(badCodec.code, 2);
    assert.match(badCodec.stderr, /bad --compression: snappy/);
    const noFile = await produce(['--brokers', brokers, '--topic', 't']);
    assert.equal(noFile.code, 2);
    assert.match(noFile.stderr, /missing FILE/);
    const missing = await produce(['--brokers', brokers, '--topic', 't', join(dir, 'nope.ndjson')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read .*nope\.ndjson/);
    assert.doesNotMatch(missing.stderr, /\n\s+at /, 'no stack without EARTHMEM_DEBUG');
  });
});

/**
 * A sink call retried as the pipeline does (`withRetry` on a retriable failure), a few times: a
 * topic the broker has just auto-created answers NOT_LEADER_FOR_PARTITION until its leader is
 * elected, and the pipeline rides that out.
 */
async function retried(call: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof StorageError && error.retriable) || attempt === 5) throw error;
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
}
const flushed = (sink: KafkaDeadLetterSink): Promise<void> => retried(() => sink.flush());

const deadLetter = (i: number, payload: string): DeadLetter => ({
  reason: i % 2 ? 'malformed_json' : 'lat_out_of_range',
  message: `problem ${i}, "quoted"`,
  position: { source: 'data/in.ndjson', partition: 0, offset: 100 + i },
  payload: Buffer.from(payload),
});

describe('KafkaDeadLetterSink', () => {
  it('flush makes the entries durable on an auto-created topic: payload bytes as value, position in headers', { timeout: 60_000 }, async () => {
    const { brokers } = services();
    const topic = topicName('dead-letter'); // not created: the broker auto-creates it
    const sink = new KafkaDeadLetterSink(kafkaDeadLetterSchema.parse({ type: 'kafka', brokers, topic }), { log: quiet });
    assert.equal(sink.location, `kafka://${brokers.split(',')[0]}/${topic}`);
    const payloads = ['{"lat": 91}', '{not json ü 😀', '  {"a":1}  '];
    payloads.forEach((p, i) => sink.write(deadLetter(i, p)));
    await sink.flush();
    assert.equal(sink.buffered, 0);
    sink.write(deadLetter(3, 'after the first flush'));
    await sink.close();

    const read = splitLines(kcat(['-C', '-t', topic, '-e', '-o', 'beginning', '-J'])).map((l) => JSON.parse(l.toString('utf8')));
    assert.equal(read.length, 4);
    const byOffset = new Map(
      read.map((m) => {
        const h = new Map<string, string>();
        for (let i = 0; i < m.headers.length; i += 2) h.set(m.headers[i], m.headers[i + 1]);
        assert.equal(m.key, null);
        return [Number(h.get('earthmem.offset')), { payload: m.payload as string, h }];
      }),
    );
    [...payloads, 'after the first flush'].forEach((payload, i) => {
      const m = byOffset.get(100 + i);
      assert.ok(m, `entry ${i}`);
      assert.equal(m.payload, payload);
      assert.equal(m.h.get('earthmem.reason'), deadLetter(i, payload).reason);
      assert.equal(m.h.get('earthmem.message'), `problem ${i}, "quoted"`);
      assert.equal(m.h.get('earthmem.source'), 'data/in.ndjson');
      assert.equal(m.h.get('earthmem.partition'), '0');
      assert.ok(Math.abs(Date.parse(m.h.get('earthmem.dead_lettered_at')!) - Date.now()) < 60_000);
    });
  });

  it('a partition taken over while its dead letters are in flight: the new owner fences the old, and each position lands once', { timeout: 180_000 }, async () => {
    const { brokers } = services();
    const topic = topicName('dead-letter-fence');
    const config = kafkaDeadLetterSchema.parse({ type: 'kafka', brokers, topic });
    const outcomes: string[] = [];
    // The new owner takes over at different moments of the old owner's send: before it starts,
    // inside its transaction, after its commit.
    for (const [round, delayMs] of [0, 1, 3, 6, 10, 20, 40, 80].entries()) {
      const source = `in-${round}.ndjson`;
      const partition = [{ source, partition: 0, startOffset: 0 }];
      const entries = Array.from({ length: 5 }, (_, i) => ({ ...deadLetter(i, `bad ${round}.${i}`), position: { source, partition: 0, offset: i } }));
      const old = new KafkaDeadLetterSink(config, { log: quiet });
      const next = new KafkaDeadLetterSink(config, { log: quiet });
      try {
        await retried(() => old.assigned(partition));
        for (const e of entries) old.write(e);
        const sent = old.flush().then(
          () => 'committed',
          (error: unknown) => error,
        );
        await new Promise((r) => setTimeout(r, delayMs));
        await retried(() => next.assigned(partition));
        const outcome = await sent;
        if (outcome !== 'committed') {
          // Fenced mid-send: the broker says so (INVALID_PRODUCER_EPOCH), or, when the fence
          // lands while it verifies the transaction, answers with an unknown server error.
          assert.ok(outcome instanceof StorageError && outcome.retriable, outcome instanceof StorageError ? outcome.describe() : String(outcome));
          assert.equal(old.buffered, entries.length, 'a failed send keeps its entries');
        }
        outcomes.push(outcome === 'committed' ? 'committed' : /fenced by another worker's producer/.test((outcome as StorageError).describe()) ? 'fenced' : 'failed');
        next.write(entries[0]!);
        if (outcome !== 'committed' && round % 2 === 1) {
          // Not told of its revocation yet, the old owner retries: it fences the new owner back,
          // reads back and sends. The new owner's next flush then fails, and its retry (the
          // pipeline's) reads back in turn: still each position once.
          await flushed(old);
          await assert.rejects(next.flush(), (error: unknown) => error instanceof StorageError && error.retriable);
        }
        for (const e of entries.slice(1)) next.write(e);
        await flushed(next);
        old.revoked(partition);
        assert.equal(old.buffered, 0, 'a revoked partition drops its unsent dead letters');
      } finally {
        await old.close();
        await next.close();
      }
      const offsets = splitLines(kcat(['-C', '-t', topic, '-e', '-o', 'beginning', '-f', '%h\n']))
        .map((l) => new Map(l.toString('utf8').split(',').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])))
        .filter((h) => h.get('earthmem.source') === source)
        .map((h) => Number(h.get('earthmem.offset')))
        .sort((a, b) => a - b);
      assert.deepEqual(offsets, [0, 1, 2, 3, 4], `round ${round} (take-over after ${delayMs} ms, old owner ${outcomes.at(-1)}): each position once`);
    }
    console.log(`take-overs: ${outcomes.join(' ')}`);
  });

  it('a flush to an unreachable broker rejects with a retriable StorageError and keeps every entry', { timeout: 60_000 }, async () => {
    services();
    const config = kafkaDeadLetterSchema.parse({
      type: 'kafka',
      brokers: '127.0.0.1:1',
      topic: 'never',
      connection_timeout: '500ms',
      request_timeout: '1s',
    });
    const lines: string[] = [];
    const sink = new KafkaDeadLetterSink(config, { log: (line) => lines.push(line), retry: { retries: 1, initialRetryTime: 100 } });
    sink.write(deadLetter(0, 'a'));
    sink.write(deadLetter(1, 'b'));
    await assert.rejects(sink.flush(), (error: unknown) => {
      assert.ok(error instanceof StorageError, String(error));
      assert.equal(error.retriable, true);
      assert.match(error.describe(), /ECONNREFUSED 127\.0\.0\.1:1/);
      return true;
    });
    assert.equal(sink.buffered, 2);
    sink.write(deadLetter(2, 'c'));
    await assert.rejects(sink.close(), StorageError);
    assert.equal(sink.buffered, 3);
    assert.ok(lines.length > 0 && lines.every((l) => !l.includes('\n')), 'kafkajs errors bridged one line each');
  });
});

describe('createKafka', () => {
  it('never logs the SASL password, and a refused SASL handshake is not retriable', { timeout: 60_000 }, async () => {
    const { brokers } = services();
    const password = 'hunter2-very-secret';
    const lines: string[] = [];
    // The test broker speaks PLAINTEXT without SASL, so the handshake is refused.
    const config = kafkaDeadLetterSchema.parse({
      type: 'kafka',
      brokers,
      topic: topicName('sasl'),
      sasl: { mechanism: 'plain', username: 'earthmem', password },
    });
    const sink = new KafkaDeadLetterSink(config, { log: (line) => lines.push(line), retry: { retries: 1, initialRetryTime: 100 } });
    sink.write(deadLetter(0, 'x'));
    await assert.rejects(sink.flush(), (error: unknown) => {
      assert.ok(error instanceof StorageError);
      assert.equal(error.retriable, false, error.describe());
      assert.ok(!error.describe().includes(password));
      return true;
    });
    assert.ok(lines.length > 0);
    for (const line of lines) {
      assert.ok(!line.includes(password), line);
      assert.ok(!line.includes('\n'), line);
      assert.match(line, /^kafkajs (ERROR|WARN) /);
    }
  });
});

describe('KafkaSource commits', () => {
  it('an older commit landing late (kafkajs retrying one that timed out) is committed over again', { timeout: 90_000 }, async () => {
    const { brokers } = services();
    const topic = await createTopic(topicName('late-commit'));
    kcat(['-P', '-t', topic, '-p', '0'], Buffer.from(Array.from({ length: 10 }, (_, i) => `{"n":${i}}`).join('\n') + '\n'));
    const groupId = `earthmem-test-late-commit-${run}`;
    const config = kafkaSourceSchema.parse({ type: 'kafka', brokers, topics: [topic], group_id: groupId, lag_log_interval: '0s', commit_interval: '200ms' });
    const source = new KafkaSource(config, { log: () => {} });
    const controller = new AbortController();
    const stored = async () => {
      const offsets = await admin!.fetchOffsets({ groupId, topics: [topic] });
      return Number(offsets[0]!.partitions.find((p) => p.partition === 0)!.offset);
    };
    const waitForStored = async (offset: number, what: string) => {
      const deadline = Date.now() + 30_000;
      while ((await stored()) !== offset) {
        assert.ok(Date.now() < deadline, `${what}: the group's offset is ${await stored()}, not ${offset}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    try {
      let seen = 0;
      for await (const chunk of source.chunks(controller.signal)) {
        seen += chunk.payloads.length;
        if (seen >= 10) break;
      }
      await source.commit([{ source: topic, partition: 0, offset: 10 }]);
      await waitForStored(10, 'after our commit');
      // What a timed-out commit retried by kafkajs after a broker restart does: older offsets, late.
      const consumer = (source as unknown as { consumer: { commitOffsets(o: object[]): Promise<void> } }).consumer;
      await consumer.commitOffsets([{ topic, partition: 0, offset: '3' }]);
      assert.equal(await stored(), 3);
      await waitForStored(10, 'after the late older commit');
    } finally {
      controller.abort();
      await source.close();
    }
  });
});

describe('setGroupOffsets', () => {
  it("stores a fresh group's offsets without kafkajs's 5 s paused-fetch sleep, and refuses a group with a running member", { timeout: 90_000 }, async () => {
    const { brokers } = services();
    const topic = await createTopic(topicName('set-offsets'));
    kcat(['-P', '-t', topic, '-p', '1'], Buffer.from(Array.from({ length: 20 }, (_, i) => `{"n":${i}}`).join('\n') + '\n'));
    const groupId = `earthmem-test-set-offsets-${run}`;
    const kafka = kafkaClient();
    const started = Date.now();
    await setGroupOffsets(kafka, groupId, topic, [{ partition: 1, offset: '7' }, { partition: 2, offset: '0' }]);
    const took = Date.now() - started;
    const stored = new Map((await admin!.fetchOffsets({ groupId, topics: [topic] }))[0]!.partitions.map((p) => [p.partition, Number(p.offset)]));
    assert.equal(stored.get(1), 7);
    assert.equal(stored.get(2), 0);
    // kafkajs's admin.setOffsets sleeps its consumer's 5 s maxWaitTime before the fetch that commits.
    assert.ok(took < 4_500, `setting offsets took ${took} ms`);

    // A source started on those offsets reads from offset 7 of partition 1.
    const config = kafkaSourceSchema.parse({ type: 'kafka', brokers, topics: [topic], group_id: groupId, lag_log_interval: '0s' });
    const source = new KafkaSource(config, { log: () => {} });
    const controller = new AbortController();
    try {
      const firstOffsets: number[] = [];
      for await (const chunk of source.chunks(controller.signal)) {
        firstOffsets.push(chunk.positions[0]!.offset);
        if (chunk.positions.at(-1)!.offset === 19) break;
      }
      assert.equal(firstOffsets[0], 7);
      await assert.rejects(setGroupOffsets(kafkaClient(), groupId, topic, [{ partition: 1, offset: '0' }]), /has running members \(state Stable\)/);
    } finally {
      controller.abort();
      await source.close();
    }
  });
});
