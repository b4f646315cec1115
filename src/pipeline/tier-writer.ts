import { createHash } from 'node:crypto';
import type { Backend } from '../core/backend.js';
import { batchProvenance, batchTimeRange, type Batch } from '../core/batch.js';
import { EarthMemoryError, StorageError } from '../core/errors.js';
import { recordBbox } from '../core/record.js';
import { withRetry, type RetryOptions } from '../core/retry.js';
import type { Catalog, CatalogEntry, PartitionClaim } from '../catalog/catalog.js';
import type { Encoder } from '../encoders/encoder.js';
import { GeoParquetEncoder } from '../encoders/parquet/geoparquet.js';
import { compileTemplate, objectKey, type CompiledTemplate } from '../stages/object-key.js';
import { createBackend } from './connectors.js';
import type { TierConfig, TierName } from './schema.js';

/** A configured tier: where its objects go, how they are encoded, how keys are laid out. */
export interface Tier {
  name: TierName;
  backend: Backend;
  encoder: Encoder;
  template: CompiledTemplate;
}

export async function openTier(name: TierName, config: TierConfig): Promise<Tier> {
  return {
    name,
    backend: await createBackend(config.primary_backend),
    encoder: new GeoParquetEncoder({ compression: config.compression, rowGroupSize: config.parquet.row_group_size }),
    template: compileTemplate(config.primary_backend.file_organization),
  };
}

/**
 * Batch → encoded object → durable put → catalog row. Only after both is the batch done (the
 * caller acks its positions). Retriable failures are retried with backoff; the key is
 * deterministic, so a retry or a replay overwrites the same object.
 */
export async function writeBatch(
  batch: Batch,
  tier: Tier,
  catalog: Catalog,
  fence: readonly PartitionClaim[] = [],
  retry: Partial<RetryOptions> = {},
): Promise<CatalogEntry> {
  const { bytes, rows } = tier.encoder.encode(batch);
  const provenance = batchProvenance(batch.records);
  const key = objectKey(batch.memoryType, batch.partitionPath, provenance, tier.encoder.extension);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const context = { stage: 'sink', connector: tier.backend.type, key, tier: tier.name };
  try {
    await withRetry(() => tier.backend.put(key, bytes, { contentType: tier.encoder.contentType }), retry);
  } catch (cause) {
    if (cause instanceof EarthMemoryError) throw cause;
    throw new StorageError(`writing ${key} failed`, { cause, context });
  }
  const { minUs, maxUs } = batchTimeRange(batch.records);
  const bbox: [number, number, number, number] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const record of batch.records) {
    const [a, b, c, d] = recordBbox(record);
    if (a < bbox[0]) bbox[0] = a;
    if (b < bbox[1]) bbox[1] = b;
    if (c > bbox[2]) bbox[2] = c;
    if (d > bbox[3]) bbox[3] = d;
  }
  const entry: CatalogEntry = {
    key,
    tier: tier.name,
    backend: tier.backend.type,
    uri: tier.backend.uri(key),
    memoryType: batch.memoryType,
    dataset: batch.dataset,
    kind: batch.kind,
    partitionPath: batch.partitionPath,
    format: tier.encoder.format,
    codec: tier.encoder.codec.name,
    codecLevel: tier.encoder.codec.level,
    bytes: bytes.byteLength,
    rows,
    timeMinUs: minUs,
    timeMaxUs: maxUs,
    bbox,
    sha256,
    provenance,
    state: 'committed',
  };
  await withRetry(() => catalog.upsert([entry], fence), retry);
  return entry;
}
