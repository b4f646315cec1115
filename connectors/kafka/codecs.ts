// Before kafkajs loads: its record decoder is replaced (see record-decoder.ts).
import './record-decoder.js';
import { createRequire } from 'node:module';
import kafkajs from 'kafkajs';
import { compressFrame, decompressFrame } from 'lz4-napi';
import { EncodeError, SourceError } from '../../src/core/errors.js';

const { CompressionCodecs, CompressionTypes } = kafkajs;

/**
 * The native binding of @mongodb-js/zstd 1.2.2: its `compress(buf, level)` honours the level,
 * while the package's main export ignores it (always 3).
 */
interface ZstdBinding {
  compress(data: Buffer, level: number): Promise<Buffer>;
  decompress(data: Buffer): Promise<Buffer>;
}
const zstd = createRequire(import.meta.url)('@mongodb-js/zstd/bindings') as ZstdBinding;

/** Kafka's own default (`compression.zstd.level`), and librdkafka's. */
const ZSTD_LEVEL = 3;

/** What kafkajs hands a codec to compress: the encoded record batch. */
interface KafkaEncoder {
  buffer: Buffer;
}

type Codec = { compress(encoder: KafkaEncoder): Promise<Buffer>; decompress(buffer: Buffer): Promise<Buffer> };

/**
 * Errors thrown from a codec travel through kafkajs, which retries anything whose `retriable`
 * is not `false`: our typed errors say `retriable: false`, so a corrupt batch fails once instead
 * of being fetched again and again.
 */
function codec(name: string, compress: (data: Buffer) => Promise<Buffer>, decompress: (data: Buffer) => Promise<Buffer>): Codec {
  return {
    async compress(encoder) {
      try {
        return await compress(encoder.buffer);
      } catch (cause) {
        throw new EncodeError(`${name} compression of a Kafka record batch failed`, { cause, context: { connector: 'kafka' } });
      }
    },
    async decompress(buffer) {
      try {
        return await decompress(buffer);
      } catch (cause) {
        throw new SourceError(`${name} decompression of a Kafka record batch failed (corrupt or unsupported data)`, {
          cause,
          retriable: false,
          context: { connector: 'kafka' },
        });
      }
    },
  };
}

// Kafka's LZ4 (record batch magic ≥ 1) is the LZ4 *frame* format, as librdkafka and the Java
// client write it; lz4-napi's `compress`/`uncompress` are the raw block format and would not do.
const lz4Codec = codec('lz4', (data) => compressFrame(data), (data) => decompressFrame(data));
const zstdCodec = codec('zstd', (data) => zstd.compress(data, ZSTD_LEVEL), (data) => zstd.decompress(data));

/**
 * Teaches kafkajs LZ4 and ZSTD (GZIP is built in). kafkajs keeps codecs in a process-wide table,
 * so this is idempotent and every client in the process gains them. Snappy stays unsupported:
 * no Snappy implementation is installed, and the Java client's xerial framing would need one.
 */
export function registerCompressionCodecs(): void {
  CompressionCodecs[CompressionTypes.LZ4] = () => lz4Codec;
  CompressionCodecs[CompressionTypes.ZSTD] = () => zstdCodec;
}
