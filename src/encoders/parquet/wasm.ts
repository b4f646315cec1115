import { createRequire } from 'node:module';
import type * as ParquetWasm from 'parquet-wasm/node';

export type { ParquetWasm };

let loaded: typeof ParquetWasm | undefined;

/**
 * parquet-wasm, loaded on first use. Its Node build instantiates its wasm synchronously on load
 * (~20 MiB of RSS), which a process that encodes on worker threads and reads no Parquet back
 * never needs on its main thread.
 */
export function parquetWasm(): typeof ParquetWasm {
  return (loaded ??= createRequire(import.meta.url)('parquet-wasm/node') as typeof ParquetWasm);
}
