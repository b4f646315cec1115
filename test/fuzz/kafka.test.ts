/**
 * The Kafka leg of the fuzz suite: ~1,000 hostile payloads produced as raw message values to a
 * fresh topic, read by an `earthmem run pipelines/kafka.yaml` worker. Each refused one is on the
 * dead-letter topic as the same bytes with an allowed reason; each valid one is in the output
 * (PostgreSQL catalog, objects decoded and read by pyarrow) with its values.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { Kafka, logLevel, type Message } from 'kafkajs';
import { parseConfigText } from '../../src/config/load.js';
import { pipelineSchema } from '../../src/pipeline/schema.js';
import { scenario, stop } from '../support/kafka-scenario.js';
import { brokers, catalogRows, createTopic, lag, startWorker, waitFor, type Worker } from '../support/kafka.js';
import { checkParquet } from '../support/python.js';
import type { ClassifyRules } from './oracle.js';
import { asExpected, assertSameRecords, expectedFate, localTiers, readBack, recordKey, sampleCases, seeded, storedGeometry, tally, type Fate } from './support.js';

const CASES = Number(process.env.FUZZ_KAFKA_CASES ?? 1_000);
/** Below the broker's message.max.bytes (1 MB) for one produce request's batch. */
const SEND_BYTES = 512 * 1024;

describe('fuzz: hostile message values through the Kafka source', () => {
  const env = { ...scenario('fuzz-kafka').env, EARTHMEM_MAX_AGE: '1s' };
  const kafka = new Kafka({ brokers: brokers().split(','), clientId: 'earthmem-fuzz', logLevel: logLevel.NOTHING });
  const workers: Worker[] = [];
  after(() => stop(...workers));

  it(`${CASES} cases: the dead-letter topic holds each refused value byte for byte with the oracle's reason; the rest are written`, { timeout: 300_000 }, () =>
    seeded('fuzz kafka', async (fileSeed) => {
      const seed = fileSeed + 2; // other cases than the file run's
      const config = parseConfigText(readFileSync('pipelines/kafka.yaml', 'utf8'), 'pipelines/kafka.yaml', pipelineSchema, env);
      const max = config.source.max_record_bytes;
      // Then values far over max_record_bytes, back to back (their dead letters go out together), and
      // a tombstone (a null value), which reaches the pipeline as an empty payload.
      const huge = (n: number) => ({ bytes: new Uint8Array(Buffer.from(`{"dataset":"d","variable":"temperature","station":"${'s'.repeat(n)}"}`)), tag: 'huge' });
      const cases = [...sampleCases(CASES, max, seed), huge(400_000), huge(300_000), huge(350_000), huge(420_000), { bytes: new Uint8Array(0), tag: 'tombstone' }];
      // A Kafka value has no line rules: CR, LF and blank values are the payload as they are.
      const fates: Fate[] = cases.map((c) => expectedFate(c.bytes, max, config.classify as ClassifyRules));

      await createTopic(env.EARTHMEM_TOPIC, 1);
      const producer = kafka.producer();
      await producer.connect();
      let batch: Message[] = [];
      let bytes = 0;
      for (const c of [...cases, undefined]) {
        if (c === undefined || (bytes + c.bytes.length > SEND_BYTES && batch.length > 0)) {
          // One partition, sends in order: case i is offset i.
          await producer.send({ topic: env.EARTHMEM_TOPIC, acks: -1, messages: batch });
          batch = [];
          bytes = 0;
        }
        if (c !== undefined) {
          batch.push({ value: c.tag === 'tombstone' ? null : Buffer.from(c.bytes) });
          bytes += c.bytes.length;
        }
      }
      await producer.disconnect();

      const worker = startWorker('pipelines/kafka.yaml', env);
      workers.push(worker);
      await waitFor('the group to commit every offset', async () => (await lag(env.EARTHMEM_TOPIC, env.EARTHMEM_GROUP)) === 0, 180_000);
      await stop(worker);

      const deadIndexes = fates.flatMap((f, i) => (f.dead ? [i] : []));
      const consumer = kafka.consumer({ groupId: `read-${env.EARTHMEM_GROUP}` });
      await consumer.connect();
      await consumer.subscribe({ topic: env.EARTHMEM_DEAD_LETTER_TOPIC, fromBeginning: true });
      const dead = new Map<number, { value: Buffer; reason: string; message: string; where: string }>();
      let duplicates = 0;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${dead.size} of ${deadIndexes.length} dead letters on the topic`)), 90_000);
        void consumer.run({
          eachMessage: async ({ message }) => {
            const offset = Number(String(message.headers!['earthmem.offset']));
            if (dead.has(offset)) duplicates++;
            const h = message.headers!;
            dead.set(offset, {
              value: message.value ?? Buffer.alloc(0), reason: String(h['earthmem.reason']), message: String(h['earthmem.message']),
              where: `${String(h['earthmem.source'])}:${String(h['earthmem.partition'])}`,
            });
            if (dead.size === deadIndexes.length) {
              clearTimeout(timer);
              resolve();
            }
          },
        });
      });
      await consumer.disconnect();
      assert.equal(duplicates, 0, 'one dead letter per refused message (one worker, no restart)');

      for (const [i, fate] of fates.entries()) {
        const d = dead.get(i);
        const at = `offset ${i} [${cases[i]!.tag}] ${Buffer.from(cases[i]!.bytes.subarray(0, 200)).toString('latin1')}`;
        if (!fate.dead) {
          assert.equal(d, undefined, `${at}: valid but dead-lettered as ${d?.reason}: ${d?.message}`);
          continue;
        }
        assert.ok(d, `${at}: should be dead-lettered (${fate.reasons.join('|')})`);
        assert.ok(fate.reasons.includes(d.reason), `${at}: reason ${d.reason} (${d.message}), oracle: ${fate.reasons.join('|')} (${fate.why.join('; ')})`);
        assert.equal(Buffer.compare(d.value, cases[i]!.bytes), 0, `${at}: the dead-letter value is the message's bytes`);
        assert.equal(d.where, `${env.EARTHMEM_TOPIC}:0`, `${at}: source and partition headers`);
        assert.ok(d.message.length > 0);
      }

      const written = fates.flatMap((f) => (f.dead ? [] : [f]));
      const rows = await catalogRows(env.EARTHMEM_CATALOG_SCHEMA);
      const back = readBack(rows, localTiers(config));
      const keyOf = (f: Extract<Fate, { dead: false }>) =>
        recordKey(f.record.kind === 'vector' ? { ...f.record, geometry: storedGeometry(f.record.geometry) } : f.record, f.memoryType);
      assertSameRecords(back.map((b) => recordKey(asExpected(b.record), b.memoryType)), written.map(keyOf), 'decoded objects');
      const check = checkParquet(rows.map((r) => r.uri));
      for (const f of check.files) assert.deepEqual(f.problems, [], f.path);
      assert.equal(check.duckdb_count, written.length);

      const reasons = tally([...dead.values()].map((d) => d.reason));
      assert.ok(reasons.size >= 10, `dead letters cover ${reasons.size} reasons: ${[...reasons.keys()].join(', ')}`);
      console.log(`fuzz kafka: seed ${seed}, ${cases.length} messages, ${written.length} written in ${rows.length} objects, ${dead.size} dead-lettered ${JSON.stringify(Object.fromEntries(reasons))}`);
    }));
});
