// Before kafkajs loads: its record decoder is replaced (connectors/kafka/record-decoder.ts).
import '../../connectors/kafka/record-decoder.js';
import { createReadStream } from 'node:fs';
import { access, constants } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import kafkajs from 'kafkajs';
import type { Message } from 'kafkajs';
import { z } from 'zod';
import { describeError, EarthMemoryError, SourceError } from '../core/errors.js';
import { registerSecret } from '../core/redact.js';
import { connectChecked, createIdempotentProducer, createKafka, toStorageError } from '../../connectors/kafka/client.js';
import { kafkaConnectionShape, type KafkaConnectionConfig } from '../../connectors/kafka/config.js';
import { geotiffTiles, rfc3339Time } from '../../connectors/raster-file/tiles.js';
import type { RasterCompression } from '../records/raster.js';
import { UsageError } from './usage.js';

const { CompressionTypes } = kafkajs;

export const produceUsage = `Usage: earthmem produce --brokers B --topic T [--key-field F] [--compression none|gzip|lz4|zstd]
                        [--batch-size N] [--ssl] [--ca-file F] [--sasl M [--username U] [--password-env VAR]] FILE…
       earthmem produce --raster FILE.tif --topic T --dataset D --variable V --time T
                        [--tile-size 512] [--compression zstd|deflate|none] [connection options]

Sends every non-blank line of the NDJSON files, byte for byte, as one Kafka message
(idempotent producer, acks=all, Java's murmur2 key placement). With --raster, sends the
GeoTIFF cut into raster tiles, one envelope (src/records/schemas/raster-tile.md) a message,
keyed by the scene id (the file name without extension).

  --brokers B        host:port[,host:port…]; default: $KAFKA_BROKERS
  --topic T          the topic (created by the broker if it auto-creates topics)
  --key-field F      key each message by the record's field F (string or number); a line
                     without it, or that is not JSON, is sent without a key
  --compression C    none (default), gzip, lz4 or zstd
  --batch-size N     messages per produce request, default 1000
  --ssl              connect over TLS, verifying the broker against the system's CAs
  --ca-file F        connect over TLS, verifying the broker against the CA certificates in F (PEM)
  --sasl M           authenticate with SASL: plain, scram-sha-256 or scram-sha-512
  --username U       the SASL user; default: $KAFKA_USER
  --password-env VAR the environment variable holding the SASL password, default KAFKA_PASSWORD
                     (never an option: command lines are visible to other users)
  --raster FILE.tif  a GeoTIFF (stripped or tiled, any compression geotiff.js reads) to send as tiles
  --dataset D, --variable V, --time T   the tiles' header keys (T: RFC 3339, extended or basic)
  --tile-size N      tile side in pixels, default 512; edge tiles are smaller
  --compression C    with --raster: the tiles' pixel compression, zstd (default), deflate or none;
                     the Kafka batches themselves are then not compressed
`;

const tileCompressions = ['zstd', 'deflate', 'none'] as const;

const compressionTypes = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
} as const;

/**
 * Batches read ahead of the one being sent. Sends run one after another: kafkajs gives no order
 * between concurrent `send` calls (they race for the broker), and one key's records must stay in
 * file order. The idempotent producer sends one request per broker at a time anyway.
 */
const MAX_QUEUED_BATCHES = 3;
/**
 * A batch is also cut at this many bytes: kafkajs never splits a batch, and a partition's record
 * batch over the broker's `message.max.bytes` (1 MiB by default) is refused as MESSAGE_TOO_LARGE.
 */
const MAX_BATCH_BYTES = 768 * 1024;
/** Bytes a record adds to a batch besides its key and value (varints, attributes, deltas). */
const RECORD_OVERHEAD_BYTES = 24;
/** A longer line is an error, not something to buffer: bounds memory on a file without newlines. */
const MAX_LINE_BYTES = 64 * 1024 * 1024;

const usageError = (message: string) => new UsageError(message, produceUsage);

interface ProduceOptions {
  brokers: string[];
  ssl: KafkaConnectionConfig['ssl'];
  sasl: KafkaConnectionConfig['sasl'];
  topic: string;
  keyField: string | undefined;
  compression: keyof typeof compressionTypes;
  batchSize: number;
  files: string[];
  raster?: { file: string; dataset: string; variable: string; time: string; tileSize: number; compression: RasterCompression };
}

/** `earthmem produce`: NDJSON files → a Kafka topic. Usage errors are thrown as UsageError. */
export async function produceCommand(args: string[]): Promise<number> {
  const options = parseOptions(args);
  const { sent, unkeyed, seconds } = await produce(options);
  if (options.raster) {
    process.stdout.write(`sent ${sent} tiles of ${options.raster.file} to ${options.topic} in ${seconds.toFixed(2)} s (${Math.round(sent / seconds)} tiles/s)\n`);
    return 0;
  }
  if (unkeyed > 0) {
    process.stderr.write(`earthmem produce: ${unkeyed} records had no usable "${options.keyField}" field and were sent without a key\n`);
  }
  process.stdout.write(`sent ${sent} records to ${options.topic} in ${seconds.toFixed(2)} s (${Math.round(sent / seconds)} records/s)\n`);
  return 0;
}

function parseOptions(args: string[]): ProduceOptions {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      brokers: { type: 'string' },
      topic: { type: 'string' },
      'key-field': { type: 'string' },
      compression: { type: 'string' },
      'batch-size': { type: 'string', default: '1000' },
      ssl: { type: 'boolean', default: false },
      'ca-file': { type: 'string' },
      sasl: { type: 'string' },
      username: { type: 'string' },
      'password-env': { type: 'string', default: 'KAFKA_PASSWORD' },
      raster: { type: 'string' },
      dataset: { type: 'string' },
      variable: { type: 'string' },
      time: { type: 'string' },
      'tile-size': { type: 'string' },
    },
  });
  const raster = rasterOption(values, positionals);
  const brokers = values.brokers ?? process.env.KAFKA_BROKERS;
  if (!brokers) throw usageError('missing --brokers (and KAFKA_BROKERS is not set)');
  const connection = z.object({ brokers: kafkaConnectionShape.brokers }).safeParse({ brokers });
  if (!connection.success || connection.data.brokers.length === 0) throw usageError(`bad --brokers: ${brokers}`);
  if (!values.topic) throw usageError('missing --topic');
  if (values['key-field'] === '') throw usageError('--key-field needs a field name');
  const compression = raster ? 'none' : (values.compression ?? 'none');
  if (!Object.hasOwn(compressionTypes, compression)) throw usageError(`bad --compression: ${compression} (none, gzip, lz4 or zstd)`);
  const batchSize = Number(values['batch-size']);
  if (!/^\d+$/.test(values['batch-size']!) || batchSize < 1) throw usageError(`bad --batch-size: ${values['batch-size']} (a positive integer)`);
  if (positionals.length === 0 && !raster) throw usageError('missing FILE');
  return {
    brokers: connection.data.brokers,
    ssl: values['ca-file'] !== undefined ? { ca_file: values['ca-file'], reject_unauthorized: true } : values.ssl ? true : undefined,
    sasl: saslOption(values.sasl, values.username, values['password-env']!),
    topic: values.topic,
    keyField: values['key-field'],
    compression: compression as ProduceOptions['compression'],
    batchSize,
    files: raster ? [raster.file] : positionals,
    raster,
  };
}

function rasterOption(values: Record<string, string | boolean | undefined>, positionals: string[]): ProduceOptions['raster'] {
  const only = ['dataset', 'variable', 'time', 'tile-size'].filter((k) => values[k] !== undefined);
  if (values.raster === undefined) {
    if (only.length > 0) throw usageError(`--${only[0]} needs --raster`);
    return undefined;
  }
  if (positionals.length > 0) throw usageError(`--raster takes one GeoTIFF; unexpected ${positionals[0]}`);
  if (values['key-field'] !== undefined) throw usageError('--key-field is for NDJSON: raster tiles are keyed by their scene id');
  for (const k of ['dataset', 'variable', 'time'] as const) if (!values[k]) throw usageError(`--raster needs --${k}`);
  const time = rfc3339Time(values.time as string);
  if (time === undefined) throw usageError(`bad --time: ${values.time} (an RFC 3339 date-time, e.g. 2026-01-15T10:30:00Z or 20260115T103000Z)`);
  const size = (values['tile-size'] as string | undefined) ?? '512';
  if (!/^\d+$/.test(size) || Number(size) < 16 || Number(size) > 4096) throw usageError(`bad --tile-size: ${size} (16–4096)`);
  const compression = (values.compression as string | undefined) ?? 'zstd';
  if (!(tileCompressions as readonly string[]).includes(compression)) throw usageError(`bad --compression: ${compression} (with --raster: zstd, deflate or none)`);
  return {
    file: values.raster as string,
    dataset: values.dataset as string,
    variable: values.variable as string,
    time,
    tileSize: Number(size),
    compression: compression as RasterCompression,
  };
}

const saslMechanisms = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;

function saslOption(mechanism: string | undefined, username: string | undefined, passwordEnv: string): KafkaConnectionConfig['sasl'] {
  if (mechanism === undefined) {
    if (username !== undefined) throw usageError('--username needs --sasl');
    return undefined;
  }
  if (!(saslMechanisms as readonly string[]).includes(mechanism)) throw usageError(`bad --sasl: ${mechanism} (${saslMechanisms.join(', ')})`);
  const user = username ?? process.env.KAFKA_USER;
  if (!user) throw usageError('--sasl needs --username (or KAFKA_USER)');
  const password = process.env[passwordEnv];
  if (!password) throw usageError(`--sasl needs the password in the environment variable ${passwordEnv} (set it, or name another with --password-env)`);
  registerSecret(password, [user]);
  return { mechanism: mechanism as (typeof saslMechanisms)[number], username: user, password };
}

async function produce(options: ProduceOptions): Promise<{ sent: number; unkeyed: number; seconds: number }> {
  const { topic, keyField } = options;
  const context = { stage: 'produce', topic };
  // Fail before sending anything rather than after the first files.
  for (const file of options.files) {
    try {
      await access(file, constants.R_OK);
    } catch (cause) {
      throw new SourceError(`cannot read ${file}`, { cause, context: { ...context, file } });
    }
  }
  const connection = z.object(kafkaConnectionShape).parse({ brokers: options.brokers, client_id: 'earthmem-produce', ssl: options.ssl, sasl: options.sasl });
  const producer = createIdempotentProducer(createKafka(connection));
  try {
    await connectChecked(connection, producer);
  } catch (cause) {
    throw toStorageError(cause, context, `connecting to Kafka at ${options.brokers.join(',')}`);
  }

  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  let sent = 0;
  let unkeyed = 0;
  let failure: unknown;
  // One promise per batch, settling in order; after a failure later batches are not sent.
  const queued: Promise<void>[] = [];
  let tail = Promise.resolve();
  const submit = (messages: Message[]) => {
    tail = tail.then(async () => {
      if (failure !== undefined) return;
      try {
        await producer.send({ topic, acks: -1, compression: compressionTypes[options.compression], messages });
        sent += messages.length;
      } catch (error) {
        failure = error;
      }
    });
    queued.push(tail);
  };
  const progress = process.stderr.isTTY
    ? setInterval(() => process.stderr.write(`\r\x1b[2Ksent ${sent} records (${Math.round(sent / seconds())} records/s)`), 500)
    : undefined;

  try {
    let batch: Message[] = [];
    let batchBytes = 0;
    reading: for (const file of options.files) {
      for await (const messages of options.raster ? rasterMessages(options.raster) : ndjsonMessages(file, keyField)) {
        for (const { key, value } of messages) {
          if (keyField !== undefined && key === null) unkeyed++;
          const bytes = value.length + (key === null ? 0 : Buffer.byteLength(key)) + RECORD_OVERHEAD_BYTES;
          // Large messages (raster tiles) go alone rather than push a batch past the broker's limit.
          if (batch.length > 0 && batchBytes + bytes > MAX_BATCH_BYTES) {
            submit(batch);
            batch = [];
            batchBytes = 0;
            while (queued.length >= MAX_QUEUED_BATCHES) await queued.shift();
            if (failure !== undefined) break reading;
          }
          batch.push({ key, value });
          batchBytes += bytes;
          if (batch.length < options.batchSize && batchBytes < MAX_BATCH_BYTES) continue;
          submit(batch);
          batch = [];
          batchBytes = 0;
          while (queued.length >= MAX_QUEUED_BATCHES) await queued.shift();
          if (failure !== undefined) break reading;
        }
      }
    }
    if (batch.length > 0 && failure === undefined) submit(batch);
    await tail;
    if (failure !== undefined) {
      const tooLarge = options.raster && (failure as { type?: string }).type === 'MESSAGE_TOO_LARGE';
      // A tile is one message: it must fit the broker's message.max.bytes (1 MiB by default).
      throw toStorageError(failure, context, tooLarge ? `sending to topic ${topic} (a tile envelope is over the broker's message.max.bytes: use a smaller --tile-size or --compression zstd)` : `sending to topic ${topic}`);
    }
    return { sent, unkeyed, seconds: seconds() };
  } finally {
    if (progress) {
      clearInterval(progress);
      process.stderr.write('\r\x1b[2K');
    }
    // Batches already queued finish (a read error stops reading, not the sends before it).
    await tail;
    // Whatever went wrong is already on its way out; a failed disconnect must not hide it.
    await producer.disconnect().catch((error: unknown) => {
      process.stderr.write(`earthmem produce: disconnect failed: ${describeError(error)}\n`);
    });
  }
}

interface Outgoing {
  key: string | null;
  value: Buffer;
}

async function* ndjsonMessages(file: string, keyField: string | undefined): AsyncGenerator<Outgoing[]> {
  for await (const lines of ndjsonLines(file)) yield lines.map((value) => ({ key: keyField === undefined ? null : keyOf(value, keyField), value }));
}

/** One message per tile of the GeoTIFF (the raster_file source's tiling), keyed by the scene id. */
async function* rasterMessages(raster: NonNullable<ProduceOptions['raster']>): AsyncGenerator<Outgoing[]> {
  const tiles = geotiffTiles(raster.file, { dataset: raster.dataset, variable: raster.variable, time: raster.time, tileSize: raster.tileSize, compression: raster.compression });
  for await (const tile of tiles) {
    yield [{ key: tile.sceneId, value: Buffer.from(tile.envelope.buffer, tile.envelope.byteOffset, tile.envelope.byteLength) }];
  }
}

/**
 * The non-blank lines of an NDJSON file as raw bytes (invalid UTF-8 passes untouched), a chunk's
 * worth at a time. Lines end at `\n`; a `\r` before it is part of the terminator, and a line of
 * whitespace only is skipped — the same rules as the file source.
 */
async function* ndjsonLines(file: string): AsyncGenerator<Buffer[]> {
  const stream = createReadStream(file, { highWaterMark: 1 << 20 });
  let rest: Buffer | undefined;
  let lineNumber = 0;
  const lines: Buffer[] = [];
  const add = (line: Buffer) => {
    lineNumber++;
    const content = line[line.length - 1] === 0x0d ? line.subarray(0, -1) : line;
    if (!isBlank(content)) lines.push(content);
  };
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let start = 0;
      for (let end = chunk.indexOf(0x0a); end !== -1; end = chunk.indexOf(0x0a, start)) {
        const piece = chunk.subarray(start, end);
        add(rest ? Buffer.concat([rest, piece]) : piece);
        rest = undefined;
        start = end + 1;
      }
      if (start < chunk.length) {
        const tail = chunk.subarray(start);
        rest = rest ? Buffer.concat([rest, tail]) : tail;
        if (rest.length > MAX_LINE_BYTES) {
          throw new SourceError(`line ${lineNumber + 1} of ${file} is longer than ${MAX_LINE_BYTES} bytes`, {
            context: { stage: 'produce', file, offset: lineNumber + 1 },
          });
        }
      }
      if (lines.length > 0) yield lines.splice(0);
    }
    if (rest) add(rest);
    if (lines.length > 0) yield lines.splice(0);
  } catch (cause) {
    if (cause instanceof EarthMemoryError) throw cause;
    throw new SourceError(`reading ${file} failed`, { cause, context: { stage: 'produce', file } });
  } finally {
    stream.destroy();
  }
}

/** Whitespace only? Decodes only a line that starts with non-ASCII bytes (JS `trim` semantics). */
function isBlank(line: Buffer): boolean {
  for (let i = 0; i < line.length; i++) {
    const byte = line[i]!;
    if (byte === 0x20 || (byte >= 0x09 && byte <= 0x0d)) continue;
    return byte < 0x80 ? false : line.toString('utf8').trim().length === 0;
  }
  return true;
}

/** The record's `field` as a key: strings as they are, numbers in JS notation; otherwise none. */
function keyOf(line: Buffer, field: string): string | null {
  let record: unknown;
  try {
    record = JSON.parse(line.toString('utf8'));
  } catch {
    // Not JSON: still sent, without a key (counted and reported as such).
    return null;
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return null;
  const value = (record as Record<string, unknown>)[field];
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  return null;
}
