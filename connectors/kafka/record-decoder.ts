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
 */

const require = createRequire(import.meta.url);
const RECORD_DECODER = 'kafkajs/src/protocol/recordBatch/record/v0/decoder.js';
const BATCH_DECODER = 'kafkajs/src/protocol/recordBatch/v0/decoder.js';

interface KafkajsDecoder {
  buffer: Buffer;
  offset: number;
  readInt8(): number;
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
  toString(): string;
}
const Long = require('kafkajs/src/utils/long') as { fromValue(value: unknown): Long };
const HeaderDecoder = require('kafkajs/src/protocol/recordBatch/header/v0/decoder') as (decoder: KafkajsDecoder) => { key: string; value: Buffer | null };
const TimestampTypes = require('kafkajs/src/protocol/timestampTypes') as { LOG_APPEND_TIME: number };

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

/**
 * Puts `decodeRecord` in the module cache under kafkajs's record decoder. Run before kafkajs is
 * loaded (this module is imported ahead of it); returns false when kafkajs's batch decoder was
 * loaded first and already holds its own (then kafkajs decodes as it always did).
 */
export function installRecordDecoder(): boolean {
  const path = require.resolve(RECORD_DECODER);
  const cached = require.cache[path];
  if (cached !== undefined) return cached.exports === decodeRecord;
  if (require.cache[require.resolve(BATCH_DECODER)] !== undefined) return false;
  const module = new Module(path);
  module.filename = path;
  module.loaded = true;
  module.exports = decodeRecord;
  require.cache[path] = module;
  return true;
}

export const recordDecoderInstalled = installRecordDecoder();
