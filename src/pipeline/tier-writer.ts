import { createHash } from 'node:crypto';
import type { AccessTier, Backend } from '../core/backend.js';
import { batchProvenance, provenanceOfBatch, recordBatch, type Batch, type PipelineBatch, type ProvenanceRange } from '../core/batch.js';
import { ConfigError, EarthMemoryError, EncodeError, StorageError } from '../core/errors.js';
import { failpoint } from '../core/failpoint.js';
import type { ObjectIndex } from '../core/object-index.js';
import { IndexBacklog } from './index-backlog.js';
import { manifestOf, manifestOfBatch, type Manifest } from '../core/manifest.js';
import type { ObservationRecord, RecordKind } from '../core/record.js';
import type { RecordStore } from '../core/record-store.js';
import { defaultRetry, retryOptions, retryPolicyOf, withRetry, type RetryOptions, type RetryPolicy, type RetryReport } from '../core/retry.js';
import type { Catalog, CatalogEntry, ObjectKind, PartitionClaim } from '../catalog/catalog.js';
import { isDeadOwner } from '../catalog/lease-owner.js';
import type { Encoder } from '../encoders/encoder.js';
import type { StoreAppend, ZarrStoreSink } from '../encoders/zarr/sink.js';
import { canonicalFormat, encoderFor, formatProblem, rasterFormatFor, resolveFormat, type FormatKeys, type RasterFormat } from '../encoders/registry.js';
import { compileTemplate, objectKey, type CompiledTemplate } from '../stages/object-key.js';
import { CachedBackend } from '../storage/cached-backend.js';
import { CachedRecordStore } from '../storage/cached-record-store.js';
import { EncryptedBackend, parseEncryptionKey } from '../storage/encrypted-backend.js';
import { RetentionBackend } from '../storage/retention-backend.js';
import { createBackend, createCacheStore, createObjectIndex } from './connectors.js';
import { cogLayoutOf, rasterRoleOf, writesZarr, type BackendConfig, type PipelineConfig, type TierConfig, type TierName } from './schema.js';

/** What a key of a tier holds: an object's bytes (decrypted), or the records of a row set. */
export type StoredContent = { kind: 'bytes'; bytes: Uint8Array } | { kind: 'records'; records: ObservationRecord[] };

/**
 * A tier's store for one kind of batch: encoded objects in a Backend, or rows in a RecordStore.
 * The writer, the read path, the mover and gc use its common part (read, delete, uri, close),
 * and the part of its kind where objects and rows really differ (streamed copies, encoders).
 */
interface TierStoreBase {
  readonly type: string;
  readonly location: string;
  readonly template: CompiledTemplate;
  /** The backend config's `retry`: how long its calls are retried. */
  readonly retry: RetryPolicy;
  /** What the run log calls it while retrying: `s3 tier warm`, `postgresql tier hot vector_backend`. */
  readonly target: string;
  uri(key: string): string;
  read(key: string): Promise<StoredContent>;
  /** Deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}

export type Sink =
  | (TierStoreBase & {
      kind: 'objects';
      /** The backend with the tier's wrappers (encryption, retention, cache) on top. */
      backend: Backend;
      /** The format registry's encoder for each kind of record this sink stores (the backend's `format`, or the storage's default for the kind). */
      encoders: Partial<Record<RecordKind, Encoder>>;
      /** backup_policy.immutable: existing objects are never rewritten. */
      immutable: boolean;
    })
  | (TierStoreBase & { kind: 'records'; store: RecordStore })
  | (TierStoreBase & {
      kind: 'store';
      /** The backend the store's keys live in. */
      backend: Backend;
      /** `format: zarr`: batches append to the store of their memory type and partition. */
      zarr: ZarrStoreSink;
    });

interface SinkIdentity {
  template: CompiledTemplate;
  retry: RetryPolicy;
  target: string;
}

function objectSink(backend: Backend, id: SinkIdentity, encoders: Partial<Record<RecordKind, Encoder>>, immutable: boolean): Sink {
  return {
    kind: 'objects', backend, encoders, immutable, ...id,
    type: backend.type,
    location: backend.location,
    uri: (key) => backend.uri(key),
    read: async (key) => ({ kind: 'bytes', bytes: await backend.get(key) }),
    delete: (key) => backend.delete(key),
    close: async () => {
      // Both, even when one fails.
      const closed = await Promise.allSettled([backend.close(), ...Object.values(encoders).map((e) => e.close())]);
      for (const c of closed) if (c.status === 'rejected') throw c.reason;
    },
  };
}

function recordSink(store: RecordStore, id: SinkIdentity): Sink {
  return {
    kind: 'records', store, ...id,
    type: store.type,
    location: store.location,
    uri: (key) => store.uri(key),
    read: async (key) => ({ kind: 'records', records: await store.readRecords(key) }),
    delete: (key) => store.deleteRecords(key),
    close: () => store.close(),
  };
}

function zarrSink(backend: Backend, id: SinkIdentity, zarr: ZarrStoreSink): Sink {
  const keysOf = async (root: string) => zarr.keysOf(root);
  return {
    kind: 'store', backend, zarr, ...id,
    type: backend.type,
    location: backend.location,
    uri: (key) => backend.uri(key),
    read: async (key) => {
      throw new StorageError(`${key} is a Zarr store (a folder of keys): open ${backend.uri(key)} with a Zarr reader (xarray.open_zarr)`, { context: { key, connector: backend.type } });
    },
    // Metadata first, so a store deleted halfway is no longer a store anyone opens.
    delete: async (key) => {
      const keys = (await keysOf(key)).map((k) => k.key);
      const meta = keys.filter((k) => /(^|\/)(\.zmetadata|\.zgroup|\.zattrs|\.zarray|zarr\.json)$/.test(k)).sort((a, b) => a.length - b.length);
      for (const k of [...meta, ...keys.filter((k) => !meta.includes(k))]) await backend.delete(k);
    },
    close: () => backend.close(),
  };
}

/**
 * Where a tier writes raster scenes, one COG per scene under the backend's organization: an
 * object sink (read, delete, raw copies between tiers work as for any object) with its raster
 * format. Its batch encoder refuses records: COG keeps rasters only.
 */
export type RasterSink = Extract<Sink, { kind: 'objects' }> & { raster: RasterFormat };

/** Where a tier keeps Zarr stores (`format: zarr`): point series, and raster tiles appended along time. */
export type StoreSink = Extract<Sink, { kind: 'store' }>;

/** A configured tier: its sinks (primary, and vector features when set), index and raster sink. */
export interface Tier {
  name: TierName;
  config: TierConfig;
  primary: Sink;
  vector?: Sink;
  /** raster_backend, or the primary backend when it writes COGs. */
  raster?: RasterSink;
  /** raster_backend, or the primary backend, when it keeps Zarr stores: tiles append to one array per (dataset, variable, grid). */
  rasterStore?: StoreSink;
  index?: ObjectIndex;
  /** Feeds `index` without holding up ingest while it is down. */
  indexBacklog?: IndexBacklog;
  /** Where the tier keeps its data, for people. */
  location: string;
  /** Notes for the run log (e.g. what encryption does not cover). */
  notes: string[];
}

/** The kinds of record a tier's backend in `role` receives: the primary gets vectors too unless the tier has a vector_backend. */
export function kindsOf(role: string, config: Pick<TierConfig, 'vector_backend'>): RecordKind[] {
  if (role === 'raster_backend') return [];
  if (role === 'vector_backend') return ['vector'];
  return config.vector_backend === undefined ? ['point', 'vector'] : ['point'];
}

/** A backend's `format`, when it has the key and names one. */
export function formatOfBackend(backend: BackendConfig): string | undefined {
  return 'format' in backend ? backend.format : undefined;
}

function formatKeysOf(backend: BackendConfig): FormatKeys {
  const b = backend as Partial<Extract<BackendConfig, { type: 'local_file' }>>;
  return { compression: b.compression, validation: b.validation, layout: b.layout, partition_cols: b.partition_cols, row_group_size: b.row_group_size, page_size: b.page_size };
}

/** The key layout of a backend: its file_organization (or organization), then its partition_cols as Hive directories. */
export function templateOf(backend: BackendConfig): CompiledTemplate {
  const b = backend as Partial<Extract<BackendConfig, { type: 'local_file' }>>;
  const cols = b.partition_cols ?? [];
  const organization = b.file_organization ?? b.organization ?? (cols.length > 0 ? '' : 'year/month/dataset');
  return compileTemplate(organization, cols);
}

/** The sink of a batch: vector features go to `vector_backend` when the tier has one, raster scenes to the raster sink. */
export function sinkOf(tier: Tier, kind: ObjectKind): Sink {
  if (kind === 'raster') {
    const raster = tier.raster ?? tier.rasterStore;
    if (raster === undefined) throw new ConfigError(`tier ${tier.name} has no raster_backend and its primary_backend writes neither COGs nor Zarr`, [], { context: { tier: tier.name } });
    return raster;
  }
  return kind === 'vector' && tier.vector !== undefined ? tier.vector : tier.primary;
}

/**
 * The encoder of an object sink for `kind` records. For raster scenes it is the sink's COG
 * format as an encoder that names format, codec and extension (what raw copies between tiers
 * compare) and refuses to encode or decode: scenes are written by the scene assembler
 * (src/pipeline/raster-scenes.ts), and a COG moves only as it is.
 */
export function encoderOf(sink: Extract<Sink, { kind: 'objects' }>, kind: ObjectKind): Encoder {
  if (kind === 'raster') {
    const raster = (sink as Partial<RasterSink>).raster;
    if (raster === undefined) throw new ConfigError(`${sink.target} stores no raster scenes (its formats: ${describeFormats(sink)})`);
    const refuse = (): never => {
      throw new EncodeError(`${sink.target}: a COG is moved as it is (same COG options on both tiers); re-encoding scenes is not supported`, { context: { stage: 'encode', format: raster.format } });
    };
    return { format: raster.format, extension: raster.extension, contentType: raster.contentType, codec: raster.codec, encode: async () => refuse(), decode: () => refuse(), close: async () => undefined };
  }
  const encoder = sink.encoders[kind];
  if (encoder === undefined) throw new ConfigError(`${sink.target} stores no ${kind} records (its formats: ${describeFormats(sink)})`);
  return encoder;
}

/**
 * The encoder that reads an object of `format` written by this sink for `kind` records. A row
 * written under another format (the backend's `format` changed since) is refused, not misread.
 */
export function decoderOf(sink: Extract<Sink, { kind: 'objects' }>, kind: ObjectKind, format: string): Encoder {
  const encoder = encoderOf(sink, kind);
  if (encoder.format !== format) throw new ConfigError(`${sink.target} now stores ${kind} records as ${encoder.format}; this object was written as ${format}`);
  return encoder;
}

const describeFormats = (sink: Extract<Sink, { kind: 'objects' }>) =>
  (Object.entries(sink.encoders) as [RecordKind, Encoder][]).map(([kind, e]) => `${kind} ${e.format}`).join(', ') || 'none';

/** How a sink stores batches, for people: `parquet, year/month/dataset, zstd`, `point csv / vector geojson, …`, or `sqlite rows`. */
export function describeSink(sink: Sink): string {
  if (sink.kind === 'records') return `${sink.store.type} rows`;
  if (sink.kind === 'store') return `zarr v${sink.zarr.options.zarrFormat} stores, ${sink.template.source}, ${sink.zarr.codec.name}`;
  const encoders = [...new Set(Object.values(sink.encoders))];
  const formats = encoders.length === 1 ? encoders[0]!.format : describeFormats(sink);
  const codecs = [...new Set(encoders.map((e) => e.codec.name))].join('/');
  return `${formats}, ${sink.template.source}, ${codecs}`;
}

/**
 * Opens a tier's backends and stacks what its config asks for on each object backend, outermost
 * first: encryption (so nothing below sees plaintext) → retention (immutable) → cache → backend.
 */
export async function openTier(name: TierName, config: TierConfig, pipeline: Pick<PipelineConfig, 'storage' | 'batch'>, env: NodeJS.ProcessEnv = process.env): Promise<Tier> {
  const { storage } = pipeline;
  const opened: { close(): Promise<void> }[] = [];
  const notes: string[] = [];
  const encrypt = config.encryption_enabled ?? storage.encryption_enabled;
  const key = encrypt ? parseEncryptionKey(env[storage.encryption_key_env], storage.encryption_key_env) : undefined;

  const sink = async (role: string, backendConfig: BackendConfig): Promise<Sink> => {
    const made = await createBackend(backendConfig);
    opened.push(made.kind === 'objects' ? made.backend : made.store);
    // A backend that writes COGs in this role lays out scenes by its organization, and encodes with its COG keys.
    const cog = ((role === 'primary_backend' && rasterRoleOf(config) === 'primary_backend') || role === 'raster_backend') && !writesZarr(backendConfig) ? cogLayoutOf(backendConfig) : undefined;
    const id: SinkIdentity = {
      template: cog !== undefined ? compileTemplate(cog.organization) : templateOf(backendConfig),
      retry: retryPolicyOf(backendConfig.retry),
      target: `${backendConfig.type} tier ${name}${role === 'primary_backend' ? '' : ` ${role}`}`,
    };
    if (made.kind === 'records') {
      const { store } = made;
      if (encrypt) notes.push(`tier ${name} ${role}: encryption_enabled covers objects only; ${store.type} rows stay queryable in the database (use its encryption at rest)`);
      if (config.cache_settings !== undefined) {
        const cache = await createCacheStore(config.cache_settings);
        opened.push(cache);
        return recordSink(new CachedRecordStore(store, cache, { prefetching: config.cache_settings.prefetching }), id);
      }
      return recordSink(store, id);
    }
    if (writesZarr(backendConfig)) {
      // A Zarr store is read in place by Zarr readers: encrypted or locked chunks would defeat it.
      if (encrypt) throw new ConfigError(`tier ${name} ${role}: format zarr cannot be encrypted client-side (readers open the store's keys directly); set encryption_enabled: false for this tier`);
      if (config.backup_policy?.immutable) throw new ConfigError(`tier ${name} ${role}: format zarr appends rewrite chunks and metadata, which immutable forbids`);
      const { ZarrStoreSink } = await import('../encoders/zarr/sink.js');
      const { zarrOptions } = await import('../config/zarr.js');
      return zarrSink(made.backend, id, new ZarrStoreSink(made.backend, zarrOptions(backendConfig as Parameters<typeof zarrOptions>[0]), id.template));
    }
    // The format registry gives the encoder of each kind this sink stores: the backend's
    // `format`, or the storage's default for the kind. One encoder when both kinds share a format.
    const encoders: Partial<Record<RecordKind, Encoder>> = {};
    const byFormat = new Map<string, Encoder>();
    for (const kind of kindsOf(role, config)) {
      const { format } = resolveFormat(kind, formatOfBackend(backendConfig), storage);
      // A kind this format cannot store never reaches it (validation checks the routes).
      if (formatProblem(kind, format) !== undefined) continue;
      let encoder = byFormat.get(canonicalFormat(format));
      if (encoder === undefined) {
        encoder = await encoderFor(kind, format, {
          compression: config.compression,
          rowGroupSize: config.parquet.row_group_size,
          encodeWorkers: pipeline.batch.encode_workers,
          keys: formatKeysOf(backendConfig),
        });
        opened.push(encoder);
        byFormat.set(canonicalFormat(format), encoder);
      }
      encoders[kind] = encoder;
    }
    let backend: Backend = made.backend;
    if (config.cache_settings !== undefined) {
      const cache = await createCacheStore(config.cache_settings);
      opened.push(cache);
      backend = new CachedBackend(backend, cache, { prefetching: config.cache_settings.prefetching });
    }
    const policy = config.backup_policy;
    if (policy?.versioning && !made.backend.capabilities.versioning) {
      notes.push(`tier ${name} ${role}: backup_policy.versioning asked for, but ${made.backend.type} here keeps no versions (enable it on the bucket/container)`);
    }
    if (policy?.immutable) {
      const retention = new RetentionBackend(backend, policy.retention_period!);
      notes.push(`tier ${name} ${role}: immutable for ${policy.retention_period! / 86_400_000} days, enforced by ${retention.serverEnforced ? `${made.backend.type} object lock and the engine` : 'the engine'}`);
      backend = retention;
    }
    if (key !== undefined) backend = new EncryptedBackend(backend, key);
    return objectSink(backend, id, encoders, policy?.immutable ?? false);
  };

  try {
    const primary = await sink('primary_backend', config.primary_backend);
    const vector = config.vector_backend === undefined ? undefined : await sink('vector_backend', config.vector_backend);
    let raster: RasterSink | undefined;
    let rasterStore: StoreSink | undefined;
    const rasterRole = rasterRoleOf(config);
    if (rasterRole !== undefined) {
      const rasterSink = rasterRole === 'primary_backend' ? primary : await sink('raster_backend', config.raster_backend!);
      if (rasterSink.kind === 'records') throw new StorageError(`${rasterRole} ${rasterSink.type} keeps rows, not raster scenes`, { context: { tier: name } });
      if (rasterSink.kind === 'store') rasterStore = rasterSink;
      else raster = { ...rasterSink, raster: await rasterFormatFor('cog', cogLayoutOf(config[rasterRole]!).options) };
    }
    let index: ObjectIndex | undefined;
    if (config.index_backend !== undefined) {
      index = await createObjectIndex(config.index_backend);
      opened.push(index);
    }
    return {
      name,
      config,
      primary,
      ...(vector === undefined ? {} : { vector }),
      ...(raster === undefined ? {} : { raster }),
      ...(rasterStore === undefined ? {} : { rasterStore }),
      ...(index === undefined ? {} : { index, indexBacklog: new IndexBacklog(index, `redis index of tier ${name}`, retryPolicyOf(config.index_backend!.retry)) }),
      location: primary.location,
      notes,
    };
  } catch (error) {
    for (const o of opened.reverse()) await o.close().catch(() => undefined);
    throw error;
  }
}

/** Closes everything the tier opened. */
export async function closeTier(tier: Tier): Promise<void> {
  const closers: { close(): Promise<void> }[] = [];
  for (const sink of [tier.primary, tier.vector]) {
    if (sink === undefined) continue;
    // Wrappers close what they wrap, a CachedBackend its cache too.
    closers.push(sink);
  }
  // A raster sink on the primary backend is closed with the primary.
  if (tier.raster && tier.raster.backend !== (tier.primary.kind === 'objects' ? tier.primary.backend : undefined)) closers.push(tier.raster);
  if (tier.rasterStore && tier.rasterStore !== tier.primary) closers.push(tier.rasterStore);
  tier.indexBacklog?.close();
  if (tier.index) closers.push(tier.index);
  const errors: unknown[] = [];
  for (const c of closers) await c.close().catch((e: unknown) => errors.push(e));
  if (errors.length > 0) throw errors[0];
}

/** How a write retries: each call under its connector's policy, reported and cut short as `report` says. */
export interface WriteRetry extends RetryReport {
  /** The catalog config's `retry`. */
  catalog: RetryPolicy;
}

/** What the run log calls the catalog while retrying it. */
export const catalogTarget = (catalog: Catalog) => `catalog ${catalog.type}`;

/**
 * Batch → encoded object (or rows) → durable write → catalog row → index entry. Only after all
 * of them is the batch done (the caller acks its positions). Retriable failures are retried with
 * backoff, each call under its own connector's `retry` policy; the key is deterministic and the
 * catalog upsert idempotent, so a retry (a whole transaction again, after a cut connection) or a
 * replay overwrites the same object, rows and catalog row. When the object has meanwhile moved
 * to another tier, the entry returned names that tier.
 */
export async function writeBatch(
  batch: PipelineBatch,
  tier: Tier,
  catalog: Catalog,
  fence: readonly PartitionClaim[] = [],
  retry: WriteRetry = { catalog: defaultRetry },
): Promise<CatalogEntry> {
  const sink = sinkOf(tier, batch.kind);
  const catalogRetry = retryOptions(catalogTarget(catalog), retry.catalog, retry);
  if (sink.kind === 'store') return appendToStore(recordBatch(batch), tier, sink, catalog, fence, retry, catalogRetry);
  const { entry } = await storeBatch(batch, tier, provenanceOfBatch(batch), {
    retry,
    // A replay of an immutable tier finds the same bytes already there: nothing to write.
    alreadyStored:
      sink.kind === 'objects' && sink.immutable
        ? async (key, sha256) => (await withRetry(() => catalog.list({ tier: tier.name, key }), catalogRetry)).some((r) => r.sha256 === sha256)
        : undefined,
  });
  const superseded = await withRetry(() => catalog.upsert([entry], fence), catalogRetry);
  if (superseded.length > 0) {
    // A migration moved this object to another tier while it was being rebuilt here: its records
    // are durable there, and this copy is not catalogued. Remove it now rather than leave it to gc.
    await withRetry(() => sink.delete(entry.key), retryOptions(sink.target, sink.retry, retry));
    return { ...entry, tier: superseded[0]!.tier };
  }
  await indexEntry(tier, entry, retry);
  return entry;
}

/**
 * A batch appended to its Zarr store, then the store's catalog row (one per store: key = its
 * root) updated with what the append added (rows, time range, bbox, provenance merged). The
 * append makes its data visible with its last metadata write, before the catalog row; the ack
 * follows the row. A redelivered batch appends the same cells again: same bytes.
 */
async function appendToStore(
  batch: Batch,
  tier: Tier,
  sink: Extract<Sink, { kind: 'store' }>,
  catalog: Catalog,
  fence: readonly PartitionClaim[],
  retry: WriteRetry,
  catalogRetry: Partial<RetryOptions>,
): Promise<CatalogEntry> {
  // The append and its catalog row under the store's lock: a row merges the previous one, so two appends must not interleave.
  // Claims mean a shared source: other workers may append to the same store.
  return withStoreLock(sink, catalog, sink.zarr.rootOf(batch.memoryType, batch.partitionPath), catalogRetry, async () => {
    const appended = await withRetry(() => sink.zarr.append(batch), sinkRetry(sink, retry)).catch((cause: unknown) =>
      Promise.reject(cause instanceof EarthMemoryError ? cause : new StorageError(`appending to the Zarr store of ${batch.memoryType} ${batch.partitionPath} failed`, { cause, context: { stage: 'sink', connector: sink.type, tier: tier.name } })),
    );
    const manifest = manifestOf(batch.records, [], [], false);
    return catalogStoreAppend({ tier, sink, catalog, fence, retry, catalogRetry }, appended, {
      memoryType: batch.memoryType, dataset: batch.dataset, kind: batch.kind, partitionPath: batch.partitionPath,
      timeMinUs: manifest.timeMinUs, timeMaxUs: manifest.timeMaxUs, bbox: manifest.bbox, provenance: batchProvenance(batch.records),
    });
  }, { shared: fence.length > 0 });
}

/**
 * A store lease is renewed while held, so it only has to outlive a renewal missed in a catalog
 * blip; a killed holder's expires this long after its last renewal, about a consumer group's
 * rebalance after a crash.
 */
const STORE_LEASE_TTL_MS = 30_000;
const STORE_LEASE_RENEW_MS = 5_000;
/** Waiting for another worker's lease: polled this often, said once after STORE_LEASE_NOTICE_MS. */
const STORE_LEASE_POLL_MS = 200;
const STORE_LEASE_NOTICE_MS = 10_000;

/**
 * Runs `work` on the Zarr store at `root` alone: after this process's earlier work on it (the
 * sink's `exclusive`), and holding the store's lease in the catalog, so workers of one group
 * whose partitions feed the same store take turns. A worker killed while holding it leaves
 * an intent the next append restores, and a lease that expires.
 */
export async function withStoreLock<T>(
  sink: StoreSink,
  catalog: Catalog,
  root: string,
  catalogRetry: Partial<RetryOptions>,
  work: () => Promise<T>,
  options: { shared: boolean; log?: (line: string) => void },
): Promise<T> {
  // A source no other worker reads (a file replay) has this process as the stores' only writer.
  if (!options.shared) return sink.zarr.exclusive(root, work);
  return sink.zarr.exclusive(root, async () => {
    const name = `zarr store ${sink.uri(root)}`;
    const owner = sink.zarr.leaseOwner;
    const started = Date.now();
    let noticed = false;
    for (;;) {
      if (await withRetry(() => catalog.acquireLease(name, owner, STORE_LEASE_TTL_MS), catalogRetry)) break;
      const holder = (await withRetry(() => catalog.lease(name), catalogRetry))?.owner;
      // A holder killed on this host is taken over at once; one elsewhere, when its lease expires.
      if (isDeadOwner(holder) && (await withRetry(() => catalog.acquireLease(name, owner, STORE_LEASE_TTL_MS, holder), catalogRetry))) break;
      if (!noticed && Date.now() - started >= STORE_LEASE_NOTICE_MS) {
        noticed = true;
        options.log?.(`${sink.target}: waiting for ${root}: another worker (${holder ?? 'unknown'}) is appending to it`);
      }
      await new Promise((r) => setTimeout(r, STORE_LEASE_POLL_MS));
    }
    let lost: unknown;
    const renew = setInterval(() => {
      catalog.acquireLease(name, owner, STORE_LEASE_TTL_MS).then(
        (held) => {
          if (!held) lost ??= new StorageError(`${sink.target}: the lease of ${root} expired and was taken while appending (the catalog was unreachable for ${STORE_LEASE_TTL_MS / 1000} s)`, { retriable: true, context: { key: root, connector: sink.type } });
        },
        () => undefined, // a renewal missed during a catalog blip: the lease lasts a while
      );
    }, STORE_LEASE_RENEW_MS);
    renew.unref();
    try {
      const result = await work();
      if (lost !== undefined) throw lost;
      return result;
    } finally {
      clearInterval(renew);
      await catalog.releaseLease(name, owner).catch(() => undefined); // it expires by itself
    }
  });
}

/** What an append added to a store, for its catalog row. */
export interface StoreAppendInfo {
  memoryType: string;
  dataset: string;
  kind: CatalogEntry['kind'];
  partitionPath: string;
  timeMinUs: number;
  timeMaxUs: number;
  bbox: CatalogEntry['bbox'];
  provenance: ProvenanceRange[];
}

/**
 * The store's catalog row (one per store: key = its root) after an append: rows, time range,
 * bbox and provenance merged with the previous row. Run under the store's `exclusive`, after the
 * append made its data visible; the ack follows the row.
 */
export async function catalogStoreAppend(
  at: { tier: Tier; sink: StoreSink; catalog: Catalog; fence: readonly PartitionClaim[]; retry: WriteRetry; catalogRetry: Partial<RetryOptions> },
  appended: StoreAppend,
  added: StoreAppendInfo,
): Promise<CatalogEntry> {
  const { tier, sink, catalog, fence, retry, catalogRetry } = at;
  const previous = (await withRetry(() => catalog.list({ tier: tier.name, key: appended.root }), catalogRetry))[0];
  const entry: CatalogEntry = {
    key: appended.root,
    tier: tier.name,
    backend: sink.type,
    uri: sink.uri(appended.root),
    memoryType: added.memoryType,
    dataset: added.dataset,
    kind: added.kind,
    partitionPath: added.partitionPath,
    format: 'zarr',
    codec: sink.zarr.codec.name,
    codecLevel: sink.zarr.codec.level,
    bytes: appended.bytes,
    // What the store holds, from the store itself: a redelivered append adds nothing.
    rows: appended.observations,
    timeMinUs: Math.min(previous?.timeMinUs ?? Infinity, added.timeMinUs),
    timeMaxUs: Math.max(previous?.timeMaxUs ?? -Infinity, added.timeMaxUs),
    bbox: previous === undefined ? added.bbox : [Math.min(previous.bbox[0], added.bbox[0]), Math.min(previous.bbox[1], added.bbox[1]), Math.max(previous.bbox[2], added.bbox[2]), Math.max(previous.bbox[3], added.bbox[3])],
    sha256: appended.sha256,
    provenance: mergeProvenance(previous?.provenance ?? [], added.provenance),
    state: 'committed',
  };
  await withRetry(() => catalog.upsert([entry], fence), catalogRetry);
  failpoint('zarr.catalogued');
  await indexEntry(tier, entry, retry);
  return entry;
}

/** A store's provenance: per source partition, the range of every append (appends of one store run in offset order), counted once. */
export function mergeProvenance(a: readonly ProvenanceRange[], b: readonly ProvenanceRange[]): ProvenanceRange[] {
  const out = new Map<string, ProvenanceRange>();
  for (const r of [...a, ...b]) {
    const id = `${r.partition}\u0000${r.source}`;
    const seen = out.get(id);
    if (seen === undefined) out.set(id, { ...r });
    // A redelivered or rebuilt range inside the known one adds no records: the cells are the same.
    else if (r.firstOffset >= seen.firstOffset && r.lastOffset <= seen.lastOffset) continue;
    else out.set(id, { ...seen, firstOffset: Math.min(seen.firstOffset, r.firstOffset), lastOffset: Math.max(seen.lastOffset, r.lastOffset), count: seen.count + r.count });
  }
  return [...out.values()].sort((x, y) => (x.source < y.source ? -1 : x.source > y.source ? 1 : x.partition - y.partition));
}

/** withRetry's options for calls to `sink`: its policy, with `override` on top (e.g. no retry for a body that cannot be replayed). */
export function sinkRetry(sink: Sink, report: RetryReport = {}, override: Partial<RetryPolicy> = {}): Partial<RetryOptions> {
  return retryOptions(sink.target, { ...sink.retry, ...override }, report);
}

export interface StoreOptions {
  /** How the sink's retries are reported and cut short; the policy is the sink's. */
  retry?: RetryReport;
  /** Put the content hash (ids) in the manifest: the mover compares it after a move. */
  contentHash?: boolean;
  /** True when the object with these bytes is already stored under `key` (immutable tiers: no rewrite). */
  alreadyStored?: (key: string, sha256: string) => Promise<boolean>;
  /** Write objects into this access tier instead of the backend's own (a migration stages archive copies online). */
  accessTier?: AccessTier;
}

/**
 * Writes a batch where its tier keeps that kind of record (an encoded object, or rows) under the
 * key its identity gives (memory type, partition path, provenance), durably, and returns the
 * catalog entry that describes it. Ingest and migration write through here alike.
 */
export async function storeBatch(
  batch: PipelineBatch,
  tier: Tier,
  provenance: readonly ProvenanceRange[],
  options: StoreOptions = {},
): Promise<{ entry: CatalogEntry; manifest: Manifest }> {
  const report = options.retry ?? {};
  const sink = sinkOf(tier, batch.kind);
  const identity = {
    tier: tier.name,
    memoryType: batch.memoryType,
    dataset: batch.dataset,
    kind: batch.kind,
    partitionPath: batch.partitionPath,
    provenance: [...provenance],
    state: 'committed' as const,
  };
  // The catalog row is the manifest (what was stored, and its content) plus the object's identity.
  const entryOf = (manifest: Manifest, stored: Pick<CatalogEntry, 'backend' | 'uri' | 'format' | 'codec' | 'codecLevel'>): CatalogEntry => ({
    ...identity,
    ...stored,
    key: manifest.keys[0]!.key,
    bytes: manifest.keys.reduce((n, k) => n + k.bytes, 0),
    sha256: manifest.keys[0]!.sha256,
    rows: manifest.rows,
    timeMinUs: manifest.timeMinUs,
    timeMaxUs: manifest.timeMaxUs,
    bbox: manifest.bbox,
  });
  if (sink.kind === 'store') throw new StorageError(`tier ${tier.name} keeps Zarr stores: batches append through writeBatch (moving a store is not supported yet)`, { context: { tier: tier.name } });
  if (sink.kind === 'objects') {
    // Retriable: the encode worker died under it (the pool replaces it).
    const encoder = encoderOf(sink, batch.kind);
    const { bytes, schema } = await withRetry(() => encoder.encode(batch), sinkRetry(sink, report));
    const key = objectKey(batch.memoryType, batch.partitionPath, provenance, encoder.extension);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    if (!(await options.alreadyStored?.(key, sha256))) await put(sink, key, bytes, encoder.contentType, tier, sinkRetry(sink, report), options.accessTier);
    const manifest = manifestOfBatch(batch, schema, [{ key, bytes: bytes.byteLength, sha256 }], options.contentHash ?? false);
    const { format, codec } = encoder;
    return { entry: entryOf(manifest, { backend: sink.backend.type, uri: sink.backend.uri(key), format, codec: codec.name, codecLevel: codec.level }), manifest };
  }
  const key = objectKey(batch.memoryType, batch.partitionPath, provenance, '.rows');
  const { records } = recordBatch(batch);
  const result = await withRetry(() => sink.store.writeRecords(key, { memoryType: batch.memoryType, dataset: batch.dataset, records }), sinkRetry(sink, report)).catch(
    (cause: unknown) => Promise.reject(cause instanceof EarthMemoryError ? cause : new StorageError(`writing rows of ${key} failed`, { cause, context: { stage: 'sink', connector: sink.store.type, key, tier: tier.name } })),
  );
  const manifest = manifestOf(records, [], [{ key, bytes: result.bytes, sha256: rowsDigest(records) }], options.contentHash ?? false);
  return { entry: entryOf(manifest, { backend: sink.store.type, uri: sink.store.uri(key), format: `${sink.store.type}-rows`, codec: 'none', codecLevel: null }), manifest };
}

/** What identifies a record store's rows: the records' positions and ids, in order. */
export function rowsDigest(records: readonly ObservationRecord[]): string {
  const digest = createHash('sha256');
  for (const r of records) digest.update(`${r.position.source}\u0000${r.position.partition}\u0000${r.position.offset}\u0000${r.id ?? ''}\n`);
  return digest.digest('hex');
}

/** Adds a catalogued object to its tier's index_backend, if the tier has one; while the index is down the entry waits in its backlog (IndexBacklog). */
export async function indexEntry(tier: Tier, entry: CatalogEntry, report: RetryReport = {}): Promise<void> {
  await tier.indexBacklog?.add(
    { key: entry.key, tier: entry.tier, memoryType: entry.memoryType, dataset: entry.dataset, bbox: entry.bbox, minTimeUs: entry.timeMinUs, maxTimeUs: entry.timeMaxUs, uri: entry.uri, bytes: entry.bytes },
    report,
  );
}

async function put(sink: Extract<Sink, { kind: 'objects' }>, key: string, bytes: Uint8Array, contentType: string, tier: Tier, retry: Partial<RetryOptions>, accessTier?: AccessTier): Promise<void> {
  const { backend } = sink;
  try {
    await withRetry(() => backend.put(key, bytes, accessTier === undefined ? { contentType } : { contentType, accessTier }), retry);
  } catch (cause) {
    if (cause instanceof EarthMemoryError) throw cause;
    throw new StorageError(`writing ${key} failed`, { cause, context: { stage: 'sink', connector: backend.type, key, tier: tier.name } });
  }
}
