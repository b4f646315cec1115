import { createRequire, Module } from 'node:module';

/**
 * kafkajs 2.2.4 decodes each record of a fetched batch with 64-bit arithmetic on its BigInt
 * `Long`: the timestamp delta is read as a Long varint and zigzag-decoded in Long operations,
 * and the batch's first offset and timestamp (strings) are parsed into Longs again for every
 * record. On a 1M-record backlog that was ~1.4 GB of short-lived objects, 60% of everything the
 * worker's main thread allocated (benchmarks/RESULTS.md, 2026-12-02 night). kafkajs has no hook
 * for its decoder and no release since 2.2.4, so this module takes the place of
 * `kafkajs/src/protocol/recordBatch/record/v0/decoder.js` in the module cache, before kafkajs
 * loads it.
 *
 * It gives exactly what kafkajs's decoder gives (the same fields, strings and Buffers, in the same
 * order; compared on real batches in record-decoder.test.ts), computing with doubles wherever the
 * values are exact in one (|n| ≤ 2^53) and with kafkajs's Long otherwise.
 *
 * kafkajs's batch decoder (`recordBatch/v0/decoder.js`) is replaced the same way: it gave every
 * record a Buffer slice and a `Decoder` of its own (273 MiB per 1M records); this one decodes each
 * record where it lies in the batch and gives the same records. And kafkajs's consumer `Batch`
 * (`consumer/batch.js`), which parsed every message's offset into a BigInt Long to compare it with
 * the fetched offset (2.6% of a Kafka worker's main thread), compares doubles where they are exact.
 */

const require = createRequire(import.meta.url);
const RECORD_DECODER = 'kafkajs/src/protocol/recordBatch/record/v0/decoder.js';
const BATCH_DECODER = 'kafkajs/src/protocol/recordBatch/v0/decoder.js';
const CONSUMER_BATCH = 'kafkajs/src/consumer/batch.js';
const CONSUMER_GROUP = 'kafkajs/src/consumer/consumerGroup.js';

interface KafkajsDecoder {
  buffer: Buffer;
  offset: number;
  readInt8(): number;
  readInt16(): number;
  readInt32(): number;
  readInt64(): Long;
  readAll(): Buffer;
  readArray<T>(reader: (decoder: KafkajsDecoder) => T): T[];
  slice(size: number): KafkajsDecoder;
  forward(size: number): void;
  readVarInt(): number;
  readVarLong(): Long;
  readVarIntBytes(): Buffer | null;
  readVarIntArray<T>(reader: (decoder: KafkajsDecoder) => T): T[];
}

interface BatchContext {
  firstOffset: string;
  firstTimestamp: string;
  magicByte: number;
  isControlBatch?: boolean;
  timestampType: number;
  maxTimestamp: string;
}

interface Long {
  add(other: unknown): Long;
  gte(other: unknown): boolean;
  toString(): string;
}
const Long = require('kafkajs/src/utils/long') as { fromValue(value: unknown): Long };
const HeaderDecoder = require('kafkajs/src/protocol/recordBatch/header/v0/decoder') as (decoder: KafkajsDecoder) => { key: string; value: Buffer | null };
const TimestampTypes = require('kafkajs/src/protocol/timestampTypes') as { LOG_APPEND_TIME: number; CREATE_TIME: number };
const Decoder = require('kafkajs/src/protocol/decoder') as new (buffer: Buffer | null) => KafkajsDecoder;
const { KafkaJSPartialMessageError } = require('kafkajs/src/errors') as { KafkaJSPartialMessageError: new (message: string) => Error };
const { lookupCodecByAttributes } = require('kafkajs/src/protocol/message/compression') as {
  lookupCodecByAttributes(attributes: number): { decompress(buffer: Buffer): Promise<Buffer> } | undefined;
};

/** The batch's first offset and timestamp as doubles (NaN when not exact), for the batch whose records are being decoded. */
let lastContext: BatchContext | undefined;
let firstOffset = NaN;
let firstTimestamp = NaN;

function exact(decimal: string): number {
  const n = Number(decimal);
  return Number.isSafeInteger(n) ? n : NaN;
}

/**
 * A zigzag varlong read as a double, or NaN (and nothing read) when it may not be exact: more
 * than 7 bytes (49 bits) is left to kafkajs's Long.
 */
function readVarLongNumber(decoder: KafkajsDecoder): number {
  const b = decoder.buffer;
  let at = decoder.offset;
  let raw = 0;
  let scale = 1;
  for (let i = 0; i < 7; i++) {
    const byte = b[at++];
    if (byte === undefined) return NaN;
    raw += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) {
      decoder.offset = at;
      return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
    }
    scale *= 128;
  }
  return NaN;
}

/** `base + delta` as kafkajs writes it (a decimal string), in doubles when that is exact. */
function sum(base: number, baseDecimal: string, delta: number | Long): string {
  if (typeof delta === 'number' && !Number.isNaN(base)) {
    const n = base + delta;
    if (Number.isSafeInteger(n)) return String(n);
  }
  return Long.fromValue(baseDecimal).add(delta).toString();
}

/** kafkajs's record decoder (magic v2), same signature and result. */
export function decodeRecord(decoder: KafkajsDecoder, batchContext: BatchContext = {} as BatchContext) {
  const { magicByte, isControlBatch = false, timestampType, maxTimestamp } = batchContext;
  if (batchContext !== lastContext) {
    lastContext = batchContext;
    firstOffset = exact(batchContext.firstOffset);
    firstTimestamp = exact(batchContext.firstTimestamp);
  }
  const attributes = decoder.readInt8();
  const small = readVarLongNumber(decoder);
  const timestampDelta: number | Long = Number.isNaN(small) ? decoder.readVarLong() : small;
  const timestamp =
    timestampType === TimestampTypes.LOG_APPEND_TIME && maxTimestamp ? maxTimestamp : sum(firstTimestamp, batchContext.firstTimestamp, timestampDelta);
  const offsetDelta = decoder.readVarInt();
  const offset = sum(firstOffset, batchContext.firstOffset, offsetDelta);
  const key = decoder.readVarIntBytes();
  const value = decoder.readVarIntBytes();
  const headers = decoder.readVarIntArray(HeaderDecoder).reduce<Record<string, Buffer | null | (Buffer | null)[]>>(
    (obj, { key, value }) => ({
      ...obj,
      [key]: obj[key] === undefined ? value : Array.isArray(obj[key]) ? (obj[key] as (Buffer | null)[]).concat([value]) : [obj[key] as Buffer | null, value],
    }),
    {},
  );
  return {
    magicByte,
    attributes,
    timestamp,
    offset,
    key,
    value,
    headers,
    isControlRecord: isControlBatch,
    batchContext,
  };
}

const TIMESTAMP_TYPE_FLAG_MASK = 0x8;
const TRANSACTIONAL_FLAG_MASK = 0x10;
const CONTROL_FLAG_MASK = 0x20;

/**
 * One record of a batch: its length, then its body, decoded where it lies. A body that reads past
 * its length (or past the batch), or that throws, is decoded again as kafkajs does it, from a
 * slice of its own: the same record or the same error. Otherwise every byte read was inside the
 * body, so the result is the slice path's.
 */
function decodeRecordInBatch(decoder: KafkajsDecoder, batchContext: BatchContext) {
  const at = decoder.offset;
  const length = decoder.readVarInt();
  const start = decoder.offset;
  const end = start + length;
  if (length >= 0 && end <= decoder.buffer.length) {
    try {
      const record = decodeRecord(decoder, batchContext);
      if (decoder.offset <= end) {
        decoder.offset = end;
        return record;
      }
    } catch {
      // Decoded again below, as kafkajs does, for its result or its error.
    }
  }
  decoder.offset = at;
  return decodeRecord(new Decoder(decoder.readVarIntBytes()), batchContext);
}

/** kafkajs's record batch decoder (magic v2), same signature and result. */
export async function decodeRecordBatch(fetchDecoder: KafkajsDecoder) {
  const firstOffset = fetchDecoder.readInt64().toString();
  const length = fetchDecoder.readInt32();
  const decoder = fetchDecoder.slice(length);
  fetchDecoder.forward(length);
  const remainingBytes = Buffer.byteLength(decoder.buffer);
  if (remainingBytes < length) {
    throw new KafkaJSPartialMessageError(`Tried to decode a partial record batch: remainingBytes(${remainingBytes}) < recordBatchLength(${length})`);
  }
  const partitionLeaderEpoch = decoder.readInt32();
  // The magic byte, read by the fetch decoder already, and the CRC (kafkajs checks none).
  const magicByte = decoder.readInt8();
  decoder.readInt32();
  const attributes = decoder.readInt16();
  const lastOffsetDelta = decoder.readInt32();
  const firstTimestamp = decoder.readInt64().toString();
  const maxTimestamp = decoder.readInt64().toString();
  const producerId = decoder.readInt64().toString();
  const producerEpoch = decoder.readInt16();
  const firstSequence = decoder.readInt32();
  const recordContext = {
    firstOffset,
    firstTimestamp,
    partitionLeaderEpoch,
    inTransaction: (attributes & TRANSACTIONAL_FLAG_MASK) > 0,
    isControlBatch: (attributes & CONTROL_FLAG_MASK) > 0,
    lastOffsetDelta,
    producerId,
    producerEpoch,
    firstSequence,
    maxTimestamp,
    timestampType: (attributes & TIMESTAMP_TYPE_FLAG_MASK) > 0 ? TimestampTypes.LOG_APPEND_TIME : TimestampTypes.CREATE_TIME,
  };
  const records = await decodeRecords(lookupCodecByAttributes(attributes), decoder, { ...recordContext, magicByte });
  return { ...recordContext, records };
}

async function decodeRecords(codec: ReturnType<typeof lookupCodecByAttributes>, recordsDecoder: KafkajsDecoder, recordContext: BatchContext) {
  if (!codec) return recordsDecoder.readArray((decoder) => decodeRecordInBatch(decoder, recordContext));
  const length = recordsDecoder.readInt32();
  if (length <= 0) return [];
  const decompressed = new Decoder(await codec.decompress(recordsDecoder.readAll()));
  const records = new Array<ReturnType<typeof decodeRecord>>(length);
  for (let i = 0; i < length; i++) records[i] = decodeRecordInBatch(decompressed, recordContext);
  return records;
}

interface FetchedMessage {
  offset: string;
  isControlRecord: boolean;
}
interface PartitionData {
  messages: FetchedMessage[];
  abortedTransactions?: unknown[];
}
type KafkajsBatchClass = new (topic: string, fetchedOffset: unknown, partitionData: PartitionData) => {
  rawMessages: FetchedMessage[];
  messagesWithinOffset: FetchedMessage[];
  messages: FetchedMessage[];
};
const filterAbortedMessages = require('kafkajs/src/consumer/filterAbortedMessages') as (args: {
  messages: FetchedMessage[];
  abortedTransactions?: unknown[];
}) => FetchedMessage[];

/** The messages at or after `fetchedOffset` (a fetch may return earlier ones), compared as doubles where that is exact. */
function withinOffset(messages: FetchedMessage[], fetchedOffset: unknown): FetchedMessage[] {
  const from = Long.fromValue(fetchedOffset);
  const fromNumber = exact(from.toString());
  const inLong = (message: FetchedMessage) => Long.fromValue(message.offset).gte(from);
  if (Number.isNaN(fromNumber)) return messages.filter(inLong);
  return messages.filter((message) => {
    const offset = exact(message.offset);
    return Number.isNaN(offset) ? inLong(message) : offset >= fromNumber;
  });
}

/**
 * kafkajs's consumer Batch with its constructor's per-message work in doubles: kafkajs's own
 * class is built on no messages (so its methods and fields stay kafkajs's), then given them.
 */
function consumerBatchClass(KafkajsBatch: KafkajsBatchClass): KafkajsBatchClass {
  return class Batch extends KafkajsBatch {
    constructor(topic: string, fetchedOffset: unknown, partitionData: PartitionData) {
      super(topic, fetchedOffset, { ...partitionData, messages: [] });
      this.rawMessages = partitionData.messages;
      this.messagesWithinOffset = withinOffset(partitionData.messages, fetchedOffset);
      this.messages = filterAbortedMessages({ messages: this.messagesWithinOffset, abortedTransactions: partitionData.abortedTransactions }).filter(
        (message) => !message.isControlRecord,
      );
    }
  };
}

/** Puts `exports` in the module cache under kafkajs's module `name`, unless kafkajs loaded its own; whether ours is the one. */
function replace(name: string, exports: unknown): boolean {
  const path = require.resolve(name);
  const cached = require.cache[path];
  if (cached !== undefined) return cached.exports === exports;
  const module = new Module(path);
  module.filename = path;
  module.loaded = true;
  module.exports = exports;
  require.cache[path] = module;
  return true;
}

/**
 * Puts `decodeRecordBatch`, `decodeRecord` and the consumer Batch in the module cache under
 * kafkajs's names. Run before kafkajs is loaded (this module is imported ahead of it); returns
 * false when kafkajs loaded any of its own first (then that part runs as it always did).
 */
export function installRecordDecoder(): boolean {
  const batch = replace(BATCH_DECODER, decodeRecordBatch);
  const record = replace(RECORD_DECODER, decodeRecord);
  return replaceConsumerBatch() && batch && record;
}

/** Ours, once installed. */
export let consumerBatch: KafkajsBatchClass | undefined;

/** Puts ours in the place of kafkajs's consumer Batch, unless kafkajs's consumer group (its one user) loaded it already. */
function replaceConsumerBatch(): boolean {
  const path = require.resolve(CONSUMER_BATCH);
  if (consumerBatch !== undefined) return require.cache[path]?.exports === consumerBatch;
  if (require.cache[require.resolve(CONSUMER_GROUP)] !== undefined) return false;
  require(CONSUMER_BATCH);
  const module = require.cache[path]!;
  consumerBatch = consumerBatchClass(module.exports as KafkajsBatchClass);
  module.exports = consumerBatch;
  return true;
}

export const recordDecoderInstalled = installRecordDecoder();
