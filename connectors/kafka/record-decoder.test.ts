/**
 * The record decoder that replaces kafkajs's must give what kafkajs's gives, field for field, on
 * records kafkajs's own encoder writes: small and 64-bit deltas, offsets and timestamps past
 * 2^53 (kafkajs's Long path), keys, null values, repeated headers, log-append time.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire, Module } from 'node:module';
import { dirname } from 'node:path';
import { describe, it } from 'node:test';
// First, as in the connector: kafkajs must not have loaded its own decoder yet.
import { consumerBatch, decodeRecord, decodeRecordBatch, installRecordDecoder, recordDecoderInstalled } from './record-decoder.js';
import './client.js';

const require = createRequire(import.meta.url);
type Decoder = Parameters<typeof decodeRecord>[0];
type Context = NonNullable<Parameters<typeof decodeRecord>[1]>;
const DecoderClass = require('kafkajs/src/protocol/decoder') as new (buffer: Buffer) => Decoder;
const encodeRecord = require('kafkajs/src/protocol/recordBatch/record/v0') as (record: {
  offsetDelta?: number;
  timestampDelta?: unknown;
  key?: Buffer | null;
  value: Buffer | null;
  headers?: Record<string, string | Buffer | (string | Buffer)[]>;
}) => { buffer: Buffer };
const Long = require('kafkajs/src/utils/long') as { fromValue(value: unknown): unknown };

/**
 * One of kafkajs's own modules, compiled from its file (the module cache holds ours under its
 * name); `replacing` gives what its own requires get instead of the module cache's.
 */
function kafkajsModule<T>(name: string, replacing: Record<string, unknown> = {}): T {
  const path = require.resolve(name);
  const internal = Module as unknown as { _nodeModulePaths(dir: string): string[] };
  const module = new Module(path) as Module & { _compile(source: string, filename: string): void };
  module.filename = path;
  module.paths = internal._nodeModulePaths(dirname(path));
  const cached = module.require.bind(module);
  module.require = ((id: string) => (id in replacing ? replacing[id] : cached(id))) as typeof module.require;
  module._compile(readFileSync(path, 'utf8'), path);
  return module.exports as T;
}
const original = kafkajsModule<typeof decodeRecord>('kafkajs/src/protocol/recordBatch/record/v0/decoder.js');
/** kafkajs's batch decoder with kafkajs's record decoder: kafkajs as it ships. */
const originalBatch = kafkajsModule<typeof decodeRecordBatch>('kafkajs/src/protocol/recordBatch/v0/decoder.js', { '../record/v0/decoder': original });
const Encoder = require('kafkajs/src/protocol/encoder') as new () => { writeVarInt(n: number): Encoder; writeBuffer(b: Buffer): Encoder; buffer: Buffer };
type Encoder = InstanceType<typeof Encoder>;
const { RecordBatch: encodeBatch } = require('kafkajs/src/protocol/recordBatch/v0') as { RecordBatch: (batch: Record<string, unknown>) => Promise<Encoder> };

/** A record's body as the batch decoder hands it over: its length read, a decoder of its own. */
function body(record: Parameters<typeof encodeRecord>[0]): () => Decoder {
  const bytes = new DecoderClass(encodeRecord(record).buffer).readVarIntBytes()!;
  return () => new DecoderClass(bytes);
}

const context = (overrides: Partial<Context> = {}): Context => ({
  firstOffset: '1200',
  firstTimestamp: '1733184000000',
  magicByte: 2,
  isControlBatch: false,
  timestampType: 0,
  maxTimestamp: '1733184009999',
  ...overrides,
});

describe('kafka record decoder', () => {
  it('is the one kafkajs loads once the connector is imported first', () => {
    assert.equal(recordDecoderInstalled, true);
    assert.equal(installRecordDecoder(), true);
    assert.equal(require('kafkajs/src/protocol/recordBatch/record/v0/decoder.js'), decodeRecord);
    assert.equal(require('kafkajs/src/protocol/recordBatch/v0/decoder.js'), decodeRecordBatch);
    assert.ok(consumerBatch !== undefined);
    assert.equal(require('kafkajs/src/consumer/batch.js'), consumerBatch);
  });

  const deltas: unknown[] = [0, 1, -1, 127, 128, -129, 2 ** 31, -(2 ** 40), 2 ** 48, 2 ** 49 + 3, -(2 ** 52), Long.fromValue('4611686018427387904'), Long.fromValue('-9223372036854775808')];
  const contexts: [string, Context][] = [
    ['a common batch', context()],
    ['offsets and timestamps past 2^53', context({ firstOffset: '9223372036854775000', firstTimestamp: '9007199254740993' })],
    ['no timestamp', context({ firstTimestamp: '-1' })],
    ['log-append time', context({ timestampType: 1 })],
    ['a control batch', context({ isControlBatch: true })],
    ['isControlBatch left out', (({ isControlBatch: _, ...rest }) => rest as Context)(context())],
  ];
  const records: [string, Parameters<typeof encodeRecord>[0]][] = [
    ['a value', { value: Buffer.from('{"a":1}') }],
    ['a key, an empty value', { key: Buffer.from('k1'), value: Buffer.alloc(0) }],
    ['a null value (tombstone)', { key: Buffer.from('k'), value: null }],
    ['repeated and single headers', { value: Buffer.from('v'), headers: { a: ['x', 'y'], b: 'z', 'é': Buffer.from([0, 255]) } }],
  ];

  for (const [what, ctx] of contexts) {
    it(`gives what kafkajs gives: ${what}`, () => {
      for (const timestampDelta of deltas) {
        for (const offsetDelta of [0, 7, 2 ** 31 - 1]) {
          for (const [label, record] of records) {
            const decoder = body({ ...record, offsetDelta, timestampDelta });
            const ours = decodeRecord(decoder(), ctx);
            const theirs = original(decoder(), ctx);
            assert.deepEqual(ours, theirs, `${label}, timestampDelta ${String(timestampDelta)}, offsetDelta ${offsetDelta}`);
            assert.deepEqual(Object.keys(ours), Object.keys(theirs));
          }
        }
      }
    });
  }

  it('a record whose bytes end early comes out as kafkajs makes it (the batch decoder checks lengths first)', () => {
    const outcome = (decode: typeof decodeRecord, bytes: Buffer) => {
      try {
        return { record: decode(new DecoderClass(bytes), context()) };
      } catch (error) {
        return { threw: (error as Error).name };
      }
    };
    const bytes = encodeRecord({ key: Buffer.from('k'), value: Buffer.from('abc'), timestampDelta: 2 ** 40 }).buffer;
    for (let end = 1; end < bytes.length; end++) {
      assert.deepEqual(outcome(decodeRecord, bytes.subarray(1, end)), outcome(original, bytes.subarray(1, end)), `cut at ${end}`);
    }
  });

  /** A record as its bytes: `length` in front of its body (kafkajs's own when left out). */
  const framed = (record: Parameters<typeof encodeRecord>[0], length?: (bodyLength: number) => number, padding = 0) => {
    const body = new DecoderClass(encodeRecord(record).buffer).readVarIntBytes()!;
    return new Encoder().writeVarInt(length?.(body.length) ?? body.length).writeBuffer(Buffer.concat([body, Buffer.alloc(padding, 0x5a)]));
  };
  /** What a batch decoder gives for `bytes`: the batch and where the fetch decoder was left, or the error it threw. */
  const outcome = async (decode: typeof decodeRecordBatch, bytes: Buffer) => {
    const decoder = new DecoderClass(bytes);
    try {
      return { batch: await decode(decoder), offset: decoder.offset };
    } catch (error) {
      return { threw: `${(error as Error).name}: ${(error as Error).message}` };
    }
  };
  const many = Array.from({ length: 40 }, (_, i) => records[i % records.length]![1]).map((r, i) => ({ ...r, offsetDelta: i, timestampDelta: i * 997 }));
  const batches: [string, Encoder[]][] = [
    ['records of every shape', many.map((r) => framed(r))],
    ['no records', []],
    ['a record whose length says more than its body (padding after it)', [framed(many[0]!), framed(many[1]!, (n) => n + 3, 3), framed(many[2]!)]],
    ['a record whose body reads past its length', [framed(many[0]!), framed(many[3]!, (n) => n - 2), framed(many[2]!)]],
    ['a record of length 0', [framed(many[0]!, () => 0), framed(many[1]!)]],
    ['a record of length -1', [framed(many[0]!), framed(many[1]!, () => -1)]],
    ['a last record whose length goes past the batch', [framed(many[0]!), framed(many[1]!, (n) => n + 50)]],
  ];
  for (const [compression, label] of [[0, 'uncompressed'], [1, 'gzip']] as const) {
    for (const [what, framedRecords] of batches) {
      it(`decodes batches as kafkajs does, ${label}: ${what}`, async () => {
        const encoded = await encodeBatch({
          compression, firstOffset: Long.fromValue('1200'), firstTimestamp: 1733184000000, maxTimestamp: 1733184009999, lastOffsetDelta: framedRecords.length - 1, records: framedRecords,
        });
        const bytes = Buffer.concat([encoded.buffer, Buffer.from([1, 2, 3])]);
        const ours = await outcome(decodeRecordBatch, bytes);
        assert.deepEqual(ours, await outcome(originalBatch, bytes));
        if (what === 'records of every shape') assert.equal((ours as { batch: { records: unknown[] } }).batch.records.length, 40);
        // And a batch cut short, as the tail of a fetch response is.
        const cut = bytes.subarray(0, bytes.length - 10);
        assert.deepEqual(await outcome(decodeRecordBatch, cut), await outcome(originalBatch, cut));
      });
    }
  }

  describe("the consumer's Batch", () => {
    type Batch = InstanceType<NonNullable<typeof consumerBatch>> & Record<string, () => unknown>;
    const OriginalBatch = kafkajsModule<NonNullable<typeof consumerBatch>>('kafkajs/src/consumer/batch.js');
    const ABORT = Buffer.from([0, 0, 0, 0]);
    const message = (offset: string, overrides: Record<string, unknown> = {}) => ({
      offset, key: null, value: Buffer.from(offset), isControlRecord: false, batchContext: { producerId: '7', inTransaction: false }, ...overrides,
    });
    /** Everything a Batch tells kafkajs's runner and the connector. */
    const view = (batch: Batch) => ({
      fields: { ...batch },
      methods: ['isEmpty', 'isEmptyIncludingFiltered', 'isEmptyDueToFiltering', 'isEmptyControlRecord', 'isEmptyDueToLogCompactedMessages', 'firstOffset', 'lastOffset', 'offsetLag', 'offsetLagLow'].map(
        (name) => [name, batch[name]!()],
      ),
    });
    const big = '9007199254740993';
    const cases: [string, unknown, Record<string, unknown>[], unknown[]?][] = [
      ['messages before, at and after the fetched offset', '5', ['3', '4', '5', '6', '9'].map((o) => message(o))],
      ['the fetched offset as a Long', Long.fromValue('5'), ['4', '5', '6'].map((o) => message(o))],
      ['the fetched offset as a number', 5, ['4', '5', '6'].map((o) => message(o))],
      ['offsets past 2^53', '9007199254740992', ['9007199254740991', '9007199254740992', big].map((o) => message(o))],
      ['a fetched offset past 2^53, offsets below', big, ['9007199254740992', big, '9007199254740994'].map((o) => message(o))],
      ['only earlier messages (log compaction)', '10', ['3', '4'].map((o) => message(o))],
      ['no messages', '10', []],
      ['a control record', '0', [message('0'), message('1', { isControlRecord: true }), message('2')]],
      [
        'an aborted transaction',
        '0',
        [message('0'), message('1', { batchContext: { producerId: '9', inTransaction: true } }), message('2', { key: ABORT, isControlRecord: true, batchContext: { producerId: '9', inTransaction: true } }), message('3')],
        [{ firstOffset: '1', producerId: '9' }],
      ],
    ];
    for (const [what, fetchedOffset, messages, abortedTransactions] of cases) {
      it(`is kafkajs's: ${what}`, () => {
        const partitionData = { partition: 2, highWatermark: '12', messages, abortedTransactions } as never;
        const ours = new consumerBatch!('topic', fetchedOffset, partitionData) as Batch;
        const theirs = new OriginalBatch('topic', fetchedOffset, partitionData) as Batch;
        assert.deepEqual(view(ours), view(theirs));
        assert.ok(ours instanceof Object.getPrototypeOf(consumerBatch!));
      });
    }
  });
});
