/**
 * Payloads are bytes from the source to the dead letter: invalid UTF-8, NUL bytes, a byte order
 * mark and CRLF line endings, from a file and from Kafka. Bad records reach the dead letter byte
 * for byte (`payload`, or `payload_base64` when not UTF-8); good ones are written once.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { SqliteCatalog } from '../../src/catalog/sqlite.js';
import { runPipeline } from '../../src/pipeline/run.js';
import { demoConfig, tempDir } from '../support/fixtures.js';
import { scenario, stop } from '../support/kafka-scenario.js';
import { brokers, catalogRows, createTopic, lag, startWorker, waitFor } from '../support/kafka.js';
import { checkParquet } from '../support/python.js';

const point = (id: string, extra = '') =>
  `{"id":"${id}","dataset":"noaa-isd","variable":"temperature","time":"2024-03-01T00:00:00Z","lon":1.5,"lat":2.5,"value":280.5${extra}}`;
const bytes = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

/** The records of the test, by kind: each good one must be written, each bad one dead-lettered as these bytes. */
const good = {
  plain: bytes(point('plain')),
  bom: bytes([0xef, 0xbb, 0xbf], point('bom')),
  nonAscii: bytes(point('zürich', ',"station":"Zürich"')),
  escaped: bytes(point('escaped', ',"station":"tab\\there \\u00e9"')),
};
const bad = {
  invalidUtf8: { reason: 'invalid_utf8', payload: bytes('{"id":"bad-utf8","dataset":"', [0xc3, 0x28, 0xff], '","variable":"temperature"}') },
  nul: { reason: 'malformed_json', payload: bytes('{"id":"nul","dataset":"a', [0x00], 'b"}') },
  nulOnly: { reason: 'malformed_json', payload: bytes([0x00, 0x00]) },
  loneSurrogateText: { reason: 'invalid_utf8', payload: bytes('{"id":"', [0xed, 0xa0, 0x80], '"}') },
};

describe('payloads are bytes, from the source to the dead letter', () => {
  it('a file with a BOM, CRLF line endings, invalid UTF-8 and NUL bytes', async () => {
    const dir = tempDir('payload-bytes');
    const input = join(dir, 'in.ndjson');
    const data = join(dir, 'out');
    // The file starts with a BOM; every line ends in CRLF; a blank CRLF line is skipped.
    const lines = [
      bytes([0xef, 0xbb, 0xbf], point('first')),
      good.plain, good.bom, good.nonAscii, good.escaped,
      bad.invalidUtf8.payload, bad.nul.payload, bad.nulOnly.payload, bad.loneSurrogateText.payload,
      bytes(''),
      bytes(point('last')),
    ];
    writeFileSync(input, Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\r\n')])));
    const summary = await runPipeline(demoConfig(input, data));
    assert.equal(summary.recordsRead, 10);
    assert.equal(summary.recordsWritten, 6);
    assert.equal(summary.deadLettered, 4);
    assert.equal(summary.payloadBytesRead, lines.reduce((n, l, i) => n + (i === 0 ? l.length - 3 : l.length), 0), 'bytes, not characters');

    const entries = readFileSync(join(data, 'dead-letter.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const byOffset = new Map(entries.map((e) => [e.offset as number, e]));
    for (const [name, offset] of [['invalidUtf8', 6], ['nul', 7], ['nulOnly', 8], ['loneSurrogateText', 9]] as const) {
      const e = byOffset.get(offset);
      assert.ok(e, `${name}: line ${offset} dead-lettered`);
      assert.equal(e.reason, bad[name].reason, name);
      const kept = e.payload_base64 !== undefined ? Buffer.from(e.payload_base64 as string, 'base64') : Buffer.from(e.payload as string, 'utf8');
      assert.equal(Buffer.compare(kept, bad[name].payload), 0, `${name}: the dead letter holds the line's bytes (without its CR)`);
      assert.equal(e.payload_base64 !== undefined, name === 'invalidUtf8' || name === 'loneSurrogateText', `${name}: payload_base64 only when not UTF-8`);
    }

    const catalog = new SqliteCatalog(join(data, 'catalog.sqlite'));
    const rows = await catalog.list();
    await catalog.close();
    const check = checkParquet(rows.map((r) => r.uri));
    assert.deepEqual(check.files.flatMap((f) => f.ids).sort(), ['bom', 'escaped', 'first', 'last', 'plain', 'zürich']);
  });

  describe('from Kafka', () => {
    const env = { ...scenario('payload-bytes-kafka').env, EARTHMEM_MAX_AGE: '1s' };
    const kafka = new Kafka({ brokers: brokers().split(','), clientId: 'earthmem-test', logLevel: logLevel.NOTHING });
    const workers: ReturnType<typeof startWorker>[] = [];
    after(() => stop(...workers));

    it('values with a BOM, CRLF, invalid UTF-8 and NUL bytes: the dead-letter topic holds the same bytes', { timeout: 180_000 }, async () => {
      await createTopic(env.EARTHMEM_TOPIC, 1);
      const values = [good.plain, good.bom, good.nonAscii, good.escaped, bytes(point('crlf'), '\r\n'), ...Object.values(bad).map((b) => b.payload)];
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({ topic: env.EARTHMEM_TOPIC, acks: -1, messages: values.map((value) => ({ value })) });
      await producer.disconnect();

      const worker = startWorker('pipelines/kafka.yaml', env);
      workers.push(worker);
      await waitFor('the group to commit every offset', async () => (await lag(env.EARTHMEM_TOPIC, env.EARTHMEM_GROUP)) === 0, 120_000);
      await stop(worker);

      const rows = await catalogRows(env.EARTHMEM_CATALOG_SCHEMA);
      const check = checkParquet(rows.map((r) => r.uri));
      assert.deepEqual(check.files.flatMap((f) => f.ids).sort(), ['bom', 'crlf', 'escaped', 'plain', 'zürich']);

      const consumer = kafka.consumer({ groupId: `read-${env.EARTHMEM_GROUP}` });
      await consumer.connect();
      await consumer.subscribe({ topic: env.EARTHMEM_DEAD_LETTER_TOPIC, fromBeginning: true });
      const dead: { value: Buffer; reason: string; offset: number }[] = [];
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${dead.length} dead letters`)), 60_000);
        void consumer.run({
          eachMessage: async ({ message }) => {
            dead.push({ value: message.value!, reason: String(message.headers!['earthmem.reason']), offset: Number(String(message.headers!['earthmem.offset'])) });
            if (dead.length === Object.keys(bad).length) {
              clearTimeout(timer);
              resolve();
            }
          },
        });
      });
      await consumer.disconnect();
      for (const [i, b] of Object.values(bad).entries()) {
        const d = dead.find((x) => x.offset === 5 + i);
        assert.ok(d, `offset ${5 + i} dead-lettered`);
        assert.equal(d.reason, b.reason);
        assert.equal(Buffer.compare(d.value, b.payload), 0, `offset ${5 + i}: the same bytes`);
      }
    });
  });
});
