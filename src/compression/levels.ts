import type { CompressionConfig } from '../config/common.js';

export type CompressionAlgorithm = CompressionConfig['algorithm'];
export type CompressionLevel = CompressionConfig['level'];

/**
 * The one table that maps the spec's low / medium / high / maximum to each codec's own level
 * (zstd 1–22, gzip 1–9, brotli 0–11); the Parquet encoder writes at these levels and the catalog
 * records them. `null` where the codec as written has no levels: `lz4` is Parquet's LZ4_RAW,
 * which parquet-wasm writes at its one fixed setting.
 */
export const codecLevels: Record<CompressionAlgorithm, Record<CompressionLevel, number | null>> = {
  zstd: { low: 1, medium: 3, high: 9, maximum: 19 },
  gzip: { low: 1, medium: 6, high: 8, maximum: 9 },
  brotli: { low: 1, medium: 4, high: 9, maximum: 11 },
  lz4: { low: null, medium: null, high: null, maximum: null },
  snappy: { low: null, medium: null, high: null, maximum: null },
  none: { low: null, medium: null, high: null, maximum: null },
};

export function codecLevel(config: CompressionConfig): number | null {
  return codecLevels[config.algorithm][config.level];
}
