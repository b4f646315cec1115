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
import { decodeRecord, installRecordDecoder, recordDecoderInstalled } from './record-decoder.js';
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

/** kafkajs's own record decoder, compiled from its file (the module cache holds ours under its name). */
function kafkajsDecoder(): typeof decodeRecord {
  const path = require.resolve('kafkajs/src/protocol/recordBatch/record/v0/decoder.js');
  const internal = Module as unknown as { _nodeModulePaths(dir: string): string[] };
  const module = new Module(path) as Module & { _compile(source: string, filename: string): void };
  module.filename = path;
  module.paths = internal._nodeModulePaths(dirname(path));
  module._compile(readFileSync(path, 'utf8'), path);
  return module.exports as typeof decodeRecord;
}
const original = kafkajsDecoder();

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
});
