import { parentPort } from 'node:worker_threads';
import type { EncodeReply, EncodeRequest } from './encode-pool.js';
import { GeoParquetEncoder } from './parquet/geoparquet.js';

/** An encode-pool worker (src/encoders/encode-pool.ts): one batch at a time, packed columns in, object bytes out. */
const port = parentPort;
if (port === null) throw new Error('encode-worker.js runs as a worker thread of an encode pool');

port.on('message', (request: EncodeRequest) => {
  // An in-process encoder for the request's options: cheap to make, and the one encode mechanism.
  // Inside the promise, so whatever it throws is a reply, not a crash of the worker.
  Promise.resolve().then(() => new GeoParquetEncoder(request.options).encodeColumns(request.columns)).then(
    (result) => {
      // Transfer the bytes; a view into a larger buffer (or a pooled Buffer) is copied out first.
      const own = result.bytes.byteOffset === 0 && result.bytes.byteLength === result.bytes.buffer.byteLength ? result.bytes : new Uint8Array(result.bytes);
      const reply: EncodeReply = { ok: true, result: { ...result, bytes: own } };
      port.postMessage(reply, [own.buffer as ArrayBuffer]);
    },
    (error: unknown) => {
      const reply: EncodeReply = {
        ok: false,
        error: error instanceof Error ? { name: error.name, message: error.message, ...(error.stack === undefined ? {} : { stack: error.stack }) } : { name: 'Error', message: String(error) },
      };
      port.postMessage(reply);
    },
  );
});
