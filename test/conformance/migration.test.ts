/**
 * MigrationJob conformance across real backends (issue #10): one function, run on pairs of tiers
 * backed by the project's servers (versitygw S3, fake-gcs-server, Azurite, PostGIS) and local
 * files / SQLite + SpatiaLite. For each pair: a deterministic sample is ingested into the source
 * tier by `codex.run()`, one job moves every object to the destination (re-encoded to the
 * destination's codec, or, for one pair, copied as raw bytes because the codecs match), and then:
 * the job completed; every catalog row is in the destination tier with the destination backend;
 * the source holds nothing (catalog, opened tier and the server itself); the destination holds
 * exactly the catalogued keys; every valid id is read back exactly once through the catalog
 * (downloaded with codex.read, read by pyarrow and DuckDB); `earthmem gc --grace 0s` finds nothing.
 * Two pairs move out of an Azure archive tier: the first run asks for a rehydration and ends
 * `rehydrating`, the second completes. Last, a kill -9 in the middle of an S3 multipart upload
 * (local_file → s3, raw streamed copy of a 20 MiB object): the resumed job completes and
 * `earthmem gc` finds and aborts the unfinished upload.
 *
 * Needs the servers' settings in the environment: eval "$(scripts/services env --export)".
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { Storage } from '@google-cloud/storage';
import Database from 'better-sqlite3';
import pg from 'pg';
import { stringify } from 'yaml';
import { SqliteCatalog } from '../../src/catalog/sqlite.js';
import { MemoryCodex } from '../../src/codex/memory-codex.js';
import { ArchivedObjectError } from '../../src/core/errors.js';
import { openStorage, rehydrateStored, type OpenedStorage } from '../../src/pipeline/read.js';
import type { TierName } from '../../src/pipeline/schema.js';
import { objectKey } from '../../src/stages/object-key.js';
import { writeSample } from '../../src/records/sample.js';
import { tempDir } from '../support/fixtures.js';
import { checkParquet } from '../support/python.js';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run eval "$(scripts/services env --export)" first (or npm test)`);
  return value;
}

const POINTS = 3_000;
const FEATURES = 40;
const VALID = POINTS + FEATURES;
const expectedIds = [...Array.from({ length: POINTS }, (_, i) => `obs-${i}`), ...Array.from({ length: FEATURES }, (_, i) => `fire-${i}`)].sort();

const run = `mc${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
const databaseUrl = required('DATABASE_URL');
const s3 = { endpoint: required('S3_ENDPOINT'), region: required('AWS_REGION'), bucket: `earthmem-${run}` };
const gcs = { endpoint: required('GCS_ENDPOINT'), project: required('GCS_PROJECT'), bucket: `earthmem-${run}` };
const azure = { connectionString: required('AZURE_CONNECTION_STRING'), account: required('AZURE_ACCOUNT'), container: `earthmem-${run}` };
required('AWS_ACCESS_KEY_ID');
required('AWS_SECRET_ACCESS_KEY');
required('SPATIALITE_MODULE');

/** The servers as an administrator sees them: bucket setup, direct listings, cleanup. */
const s3Admin = new S3Client({
  region: s3.region, endpoint: s3.endpoint, forcePathStyle: true,
  credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID!, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY! },
});
const gcsAdmin = new Storage({ apiEndpoint: gcs.endpoint, projectId: gcs.project, useAuthWithCustomEndpoint: false });
const azureAdmin = BlobServiceClient.fromConnectionString(azure.connectionString);
const schemas: string[] = [];

async function s3Keys(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3Admin.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
    for (const o of page.Contents ?? []) keys.push(o.Key!.slice(prefix.length));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}
async function gcsKeys(prefix: string): Promise<string[]> {
  const [files] = await gcsAdmin.bucket(gcs.bucket).getFiles({ prefix });
  return files.map((f) => f.name.slice(prefix.length)).sort();
}
async function azureKeys(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const blob of azureAdmin.getContainerClient(azure.container).listBlobsFlat({ prefix })) keys.push(blob.name.slice(prefix.length));
  return keys.sort();
}
/** Every file under a folder, temporary and hidden ones included. */
function localKeys(base: string): string[] {
  try {
    return (readdirSync(base, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[])
      .filter((d) => d.isFile())
      .map((d) => relative(base, join(d.parentPath ?? (d as unknown as { path: string }).path, d.name)))
      .sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}
async function pgCount(schema: string): Promise<Record<string, number>> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const counts: Record<string, number> = {};
    for (const table of ['earthmem_points', 'earthmem_features', 'earthmem_record_keys']) {
      counts[table] = Number((await client.query(`SELECT count(*) AS n FROM "${schema}"."${table}"`)).rows[0].n);
    }
    return counts;
  } finally {
    await client.end();
  }
}
function sqliteCount(path: string): Record<string, number> {
  const db = new Database(path, { readonly: true });
  try {
    const counts: Record<string, number> = {};
    for (const table of ['earthmem_points', 'earthmem_features', 'earthmem_record_sets']) {
      counts[table] = (db.prepare(`SELECT count(*) AS n FROM "${table}"`).get() as { n: number }).n;
    }
    return counts;
  } finally {
    db.close();
  }
}

/** One end of a pair: a tier, its backend as the pipeline file writes it, and how to look at it directly. */
interface End {
  tier: TierName;
  type: string;
  backend: (dir: string) => Record<string, unknown>;
  compression: { algorithm: string; level: string };
  /** What the server itself holds for this tier: object keys, or row counts of the record store. */
  direct: (dir: string) => Promise<string[] | Record<string, number>>;
}
/** What the destination's objects are written with (catalog codec and level, pyarrow's codec name). */
interface Expected {
  codec: string;
  codecLevel: number | null;
  parquetCodec: string;
}
interface Pair {
  name: string;
  source: End;
  destination: End & { expected: Expected };
  catalog: 'sqlite' | 'postgresql';
  /** Same format, codec and level at both ends: the mover streams the bytes across unchanged. */
  rawCopy?: boolean;
  /** The destination is an offline archive tier: objects are in Archive, reads need a rehydration. */
  archive?: boolean;
  /** First run the job in `earthmem migrate` killed (-9) at this failpoint; the library call then resumes it. */
  crashAt?: string;
  /**
   * The source is an offline archive tier (Azure `access_tier: archive`): the first run, in
   * `earthmem migrate`, finds every blob archived, asks for rehydration and ends `rehydrating`;
   * the library call (the same job again) then moves them.
   */
  archivedSource?: boolean;
}

const localEnd = (tier: TierName, compression: End['compression']): End => ({
  tier, type: 'local_file', compression,
  backend: (dir) => ({ type: 'local_file', base_path: join(dir, tier), format: 'geoparquet' }),
  direct: async (dir) => localKeys(join(dir, tier)),
});
const s3End = (tier: TierName, prefix: string, compression: End['compression'], options: Record<string, unknown> = {}): End => ({
  tier, type: 's3', compression,
  backend: () => ({
    type: 's3', bucket: s3.bucket, region: '${AWS_REGION}', endpoint: '${S3_ENDPOINT}', prefix: `${run}/${prefix}/`, format: 'geoparquet',
    credentials: { aws_access_key_id: '${AWS_ACCESS_KEY_ID}', aws_secret_access_key: '${AWS_SECRET_ACCESS_KEY}' },
    ...options,
  }),
  direct: () => s3Keys(`${run}/${prefix}/`),
});
const gcsEnd = (tier: TierName, prefix: string, compression: End['compression']): End => ({
  tier, type: 'gcs', compression,
  backend: () => ({ type: 'gcs', bucket: gcs.bucket, project: '${GCS_PROJECT}', endpoint: '${GCS_ENDPOINT}', prefix: `${run}/${prefix}/`, format: 'geoparquet' }),
  direct: () => gcsKeys(`${run}/${prefix}/`),
});
const azureArchiveEnd = (tier: TierName, prefix: string, compression: End['compression']): End => ({
  tier, type: 'azure_blob', compression,
  backend: () => ({
    type: 'azure_blob', account: azure.account, container: azure.container, connection_string: '${AZURE_CONNECTION_STRING}',
    prefix: `${run}/${prefix}/`, access_tier: 'archive', format: 'geoparquet',
  }),
  direct: () => azureKeys(`${run}/${prefix}/`),
});
const postgisEnd = (tier: TierName, schema: string): End => ({
  tier, type: 'postgresql', compression: { algorithm: 'zstd', level: 'medium' },
  backend: () => ({ type: 'postgresql', connection_string: '${DATABASE_URL}', schema, postgis_enabled: true, partitioning: 'native', max_connections: 4 }),
  direct: () => pgCount(schema),
});
const spatialiteEnd = (tier: TierName): End => ({
  tier, type: 'sqlite', compression: { algorithm: 'zstd', level: 'medium' },
  backend: (dir) => ({ type: 'sqlite', database_path: join(dir, 'hot_memory.db'), spatialite_enabled: true }),
  direct: async (dir) => sqliteCount(join(dir, 'hot_memory.db')),
});

const zstd = (level: string) => ({ algorithm: 'zstd', level });
// pyarrow names Parquet's LZ4_RAW codec LZ4 (its legacy framed LZ4 is LZ4_HADOOP).
const LZ4: Expected = { codec: 'lz4_raw', codecLevel: null, parquetCodec: 'LZ4' };
const ZSTD = (codecLevel: number): Expected => ({ codec: 'zstd', codecLevel, parquetCodec: 'ZSTD' });

/** The pipeline file of a pair: the sample file in, every memory type routed to the source tier. */
function writePipeline(dir: string, input: string, pair: Pair, catalogSchema: string): string {
  const tier = (end: End) => ({ primary_backend: end.backend(dir), compression: end.compression });
  const pipeline = {
    name: `migration-${pair.name}`,
    source: { type: 'file', path: input, format: 'ndjson' },
    classify: {
      rules: [
        { match: { variable: 'temperature' }, memory_type: 'TemperatureMemory' },
        { match: { variable: 'precipitation' }, memory_type: 'PrecipitationMemory' },
        { match: { variable: ['wind_speed', 'relative_humidity'] }, memory_type: 'AtmosphereMemory' },
        { match: { kind: 'vector' }, memory_type: 'HazardMemory' },
      ],
      default: 'dead_letter',
    },
    routing: {
      default: pair.source.tier,
      memory_types: Object.fromEntries(['TemperatureMemory', 'PrecipitationMemory', 'AtmosphereMemory', 'HazardMemory'].map((m) => [m, pair.source.tier])),
    },
    batch: { max_rows: 1000, max_bytes: '8MiB' },
    storage: { tier_configs: { [pair.source.tier]: tier(pair.source), [pair.destination.tier]: tier(pair.destination) } },
    catalog: pair.catalog === 'sqlite' ? { type: 'sqlite', path: join(dir, 'catalog.sqlite') } : { type: 'postgresql', connection_string: '${DATABASE_URL}', schema: catalogSchema },
    dead_letter: { type: 'local_file', path: join(dir, 'dead-letter.ndjson') },
  };
  const file = join(dir, 'pipeline.yaml');
  writeFileSync(file, stringify(pipeline));
  return file;
}

async function withStorage<T>(codex: MemoryCodex, use: (storage: OpenedStorage) => Promise<T>): Promise<T> {
  const storage = await openStorage(codex.config);
  try {
    return await use(storage);
  } finally {
    await storage.close();
  }
}

const sinkOfTier = (storage: OpenedStorage, tier: TierName) => storage.tiers.get(tier)!.primary;

/** What the opened tier lists: object keys, or the record store's keys. */
async function tierKeys(storage: OpenedStorage, tier: TierName): Promise<string[]> {
  const sink = sinkOfTier(storage, tier);
  const keys: string[] = [];
  if (sink.kind === 'objects' || sink.kind === 'store') for await (const s of sink.backend.list('')) keys.push(s.key);
  else for await (const k of sink.store.listKeys('')) keys.push(k);
  return keys.sort();
}

const timings: string[] = [];

/** The conformance check of one pair. */
function migrationConformance(pair: Pair): void {
  describe(`MigrationJob ${pair.name}`, () => {
    const slug = pair.name.replace(/[^a-z0-9]+/gi, '_').toLowerCase();
    const catalogSchema = `em_cat_${run}_${slug}`.slice(0, 63);
    if (pair.catalog === 'postgresql') schemas.push(catalogSchema);
    const dir = tempDir(`migration-${slug}`);
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('moves every object: completed, all rows in the destination, source empty, every id once, gc finds nothing', { timeout: 120_000 }, async () => {
      const started = performance.now();
      const input = join(dir, 'in.ndjson');
      await writeSample(input, { points: POINTS, features: FEATURES, badCopies: 0, seed: 10 });
      const pipeline = writePipeline(dir, input, pair, catalogSchema);
      const codex = MemoryCodex.fromFile(pipeline);
      const { source, destination } = pair;

      // Ingest: everything into the source tier.
      const summary = await codex.run();
      assert.ok(summary.complete, 'the run acknowledged every record');
      assert.equal(summary.recordsWritten, VALID);
      const before = await codex.listObjects();
      assert.ok(before.length >= 8, `${before.length} objects`);
      assert.deepEqual([...new Set(before.map((r) => `${r.tier} ${r.backend}`))], [`${source.tier} ${source.type}`]);
      assert.equal(before.reduce((n, r) => n + r.rows, 0), VALID);
      const sourceDirect = await source.direct(dir);
      if (Array.isArray(sourceDirect)) assert.deepEqual(sourceDirect, before.map((r) => r.key).sort(), 'the source server holds what the catalog says');
      else assert.equal(sourceDirect.earthmem_points! + sourceDirect.earthmem_features!, VALID, 'the source database holds every row');
      const ingested = performance.now();

      // The job (first killed at a failpoint, for the pairs that ask).
      const id = `conformance-${slug}`;
      if (pair.archivedSource) {
        const container = azureAdmin.getContainerClient(azure.container);
        const prefix = (source.backend(dir) as { prefix: string }).prefix;
        for (const r of before) assert.equal((await container.getBlobClient(`${prefix}${r.key}`).getProperties()).accessTier, 'Archive', `${r.key} was written into Archive`);
        // First run: every read of the source fails (ArchivedObjectError), the job asks for rehydration and waits.
        const args = ['bin/earthmem.js', 'migrate', pipeline, '--id', id, '--source-tier', source.tier, '--destination-tier', destination.tier];
        const first = spawnSync(process.execPath, args, { encoding: 'utf8' });
        assert.equal(first.signal, null);
        assert.equal(first.status, 1, `earthmem migrate exits 1 while the job waits for rehydration: ${first.stdout}${first.stderr}`);
        assert.match(first.stderr, /is archived; rehydration requested, run the job again once it is online/);
        const shown = spawnSync(process.execPath, ['bin/earthmem.js', 'migrate', 'status', pipeline, id, '--json'], { encoding: 'utf8' });
        assert.equal(shown.status, 0, shown.stderr);
        const waiting = JSON.parse(shown.stdout) as { state: string; objects_total: number; objects_done: number; objects_failed: number; errors: unknown[] };
        assert.deepEqual(
          [waiting.state, waiting.objects_total, waiting.objects_done, waiting.objects_failed, waiting.errors],
          ['rehydrating', before.length, 0, 0, []],
        );
        assert.equal((await codex.getMigrationStatus(id)).state, 'rehydrating');
        const journal = await withStorage(codex, async (s) => (await s.catalog.migrationJob(id))!);
        assert.equal(journal.job.state, 'rehydrating');
        for (const step of journal.steps) {
          assert.equal(step.state, 'rehydrating', step.sourceKey);
          assert.equal(step.written, null, `${step.sourceKey}: nothing was written`);
          assert.match(step.note ?? '', /^rehydrating from the archive tier: .* is in the archive tier and cannot be read/, step.sourceKey);
        }
        // Nothing moved: the catalog still points at the archive, the destination holds nothing.
        assert.deepEqual((await codex.listObjects()).map((r) => `${r.tier} ${r.key} ${r.state}`).sort(), before.map((r) => `${r.tier} ${r.key} committed`).sort());
        const empty = await destination.direct(dir);
        assert.deepEqual(Array.isArray(empty) ? empty : Object.values(empty).filter((n) => n > 0), [], 'the destination holds nothing yet');
        // Azurite rehydrates at once (Azure takes hours, with archiveStatus rehydrate-pending-to-hot meanwhile).
        for (const r of before) {
          const properties = await container.getBlobClient(`${prefix}${r.key}`).getProperties();
          assert.deepEqual([properties.accessTier, properties.archiveStatus], ['Hot', undefined], `${r.key} is online again`);
        }
      }
      if (pair.crashAt !== undefined) {
        const args = ['bin/earthmem.js', 'migrate', pipeline, '--id', id, '--source-tier', source.tier, '--destination-tier', destination.tier, '--concurrency', '1'];
        const crashed = spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...process.env, EARTHMEM_FAILPOINT: pair.crashAt } });
        assert.equal(crashed.signal, 'SIGKILL', `${crashed.stdout}${crashed.stderr}`);
        const journal = await withStorage(codex, async (s) => (await s.catalog.migrationJob(id))!);
        const reached = journal.steps.filter((step) => step.state !== 'planned');
        assert.equal(reached.length, 1, `one object reached ${pair.crashAt}: ${JSON.stringify(journal.steps.map((step) => step.state))}`);
        if (pair.archive && pair.crashAt === 'migration.verified') {
          // The copy is staged online, so it could be read back and verified; it is archived only after that.
          const prefix = (destination.backend(dir) as { prefix: string }).prefix;
          const properties = await azureAdmin.getContainerClient(azure.container).getBlobClient(`${prefix}${reached[0]!.written!.key}`).getProperties();
          assert.equal(properties.accessTier, 'Hot', 'a verified, not yet switched copy is still online');
        }
      }
      const status = await codex.executeMigration({ id, source_tier: source.tier, destination_tier: destination.tier, concurrency: 4 });
      const migrated = performance.now();
      assert.deepEqual(status.errors, []);
      assert.equal(status.state, 'completed');
      assert.equal(status.objects_total, before.length);
      assert.equal(status.objects_done, before.length);
      assert.equal(status.objects_failed, 0);
      assert.equal(status.progress_percentage, 100);
      assert.deepEqual(await codex.getMigrationStatus(id), status);
      // The journal says how each object was copied: raw bytes (no content hash) or re-encoded.
      const journal = await withStorage(codex, async (s) => (await s.catalog.migrationJob(id))!);
      assert.deepEqual([...new Set(journal.steps.map((step) => step.state))], ['source_deleted']);
      for (const step of journal.steps) assert.equal(step.written!.manifest === null, pair.rawCopy === true, `${step.sourceKey}: ${pair.rawCopy ? 'a raw copy' : 're-encoded'}`);

      // The catalog: every row in the destination tier, with the destination backend and codec.
      const rows = await codex.listObjects();
      assert.equal(rows.length, before.length);
      const expected = destination.expected;
      for (const r of rows) {
        const ext = source.type === 'postgresql' || source.type === 'sqlite' ? /\.rows$/ : /\.parquet$/;
        const from = before.find((b) => b.key.replace(ext, '.parquet') === r.key);
        assert.ok(from, `${r.key} comes from a source object`);
        assert.equal(r.tier, destination.tier, r.key);
        assert.equal(r.backend, destination.type, r.key);
        assert.equal(r.state, 'committed', r.key);
        assert.equal(r.format, 'parquet', r.key);
        assert.deepEqual([r.codec, r.codecLevel], [expected.codec, expected.codecLevel], r.key);
        assert.deepEqual([r.rows, r.timeMinUs, r.timeMaxUs, r.bbox, r.memoryType, r.dataset, r.kind], [from.rows, from.timeMinUs, from.timeMaxUs, from.bbox, from.memoryType, from.dataset, from.kind], r.key);
        assert.equal(r.createdAt, from.createdAt, `${r.key}: created time kept`);
        if (pair.rawCopy) assert.equal(r.sha256, from.sha256, `${r.key}: a raw copy keeps the bytes`);
        else assert.notEqual(r.sha256, from.sha256, `${r.key}: re-encoded`);
      }

      // The source holds nothing: the catalog's view, the opened tier, and the server itself.
      assert.deepEqual(await codex.listObjects({ tier: source.tier }), []);
      const storage = await openStorage(codex.config);
      try {
        assert.deepEqual(await tierKeys(storage, source.tier), [], 'the opened source tier lists nothing');
        assert.deepEqual(await tierKeys(storage, destination.tier), rows.map((r) => r.key).sort(), 'the destination tier lists the catalogued keys');
      } finally {
        await storage.close();
      }
      const left = await source.direct(dir);
      if (Array.isArray(left)) assert.deepEqual(left, [], 'the source server holds nothing');
      else assert.deepEqual(Object.values(left), Object.values(left).map(() => 0), `the source database holds no rows: ${JSON.stringify(left)}`);
      assert.deepEqual(await destination.direct(dir), rows.map((r) => r.key).sort(), 'the destination server holds exactly the catalogued keys');

      if (pair.archive) {
        // Moving into an archive tier puts the blobs in Archive: offline until rehydrated.
        const container = azureAdmin.getContainerClient(azure.container);
        const prefix = (destination.backend(dir) as { prefix: string }).prefix;
        for (const r of rows) {
          const properties = await container.getBlobClient(`${prefix}${r.key}`).getProperties();
          assert.equal(properties.accessTier, 'Archive', `${r.key} is in the archive tier`);
        }
        await assert.rejects(codex.read(rows[0]!.key), (e: unknown) => e instanceof ArchivedObjectError && /rehydrate/.test(e.message));
        const opened = await openStorage(codex.config);
        try {
          for (const r of rows) await rehydrateStored(opened, r, 'hot', 'High');
        } finally {
          await opened.close();
        }
      }

      // Every valid id once, read through the catalog by pyarrow and DuckDB.
      const files: string[] = [];
      for (const r of rows) {
        const content = await codex.read(r.key);
        assert.equal(content.kind, 'bytes', r.key);
        const bytes = (content as { bytes: Uint8Array }).bytes;
        assert.equal(createHash('sha256').update(bytes).digest('hex'), r.sha256, `${r.key}: the bytes the catalog describes`);
        const file = join(dir, `read-${files.length}.parquet`);
        writeFileSync(file, bytes);
        files.push(file);
      }
      const check = checkParquet(files);
      for (const f of check.files) assert.deepEqual(f.problems, [], f.path);
      for (const f of check.files) assert.deepEqual(f.codecs, [expected.parquetCodec], `${f.path}: ${f.codecs.join(',')}`);
      assert.equal(check.duckdb_count, VALID);
      assert.deepEqual(check.files.flatMap((f) => f.ids as string[]).sort(), expectedIds);

      // Nothing left behind anywhere.
      const gc = spawnSync(process.execPath, ['bin/earthmem.js', 'gc', pipeline, '--grace', '0s', '--json'], { encoding: 'utf8' });
      assert.equal(gc.status, 0, gc.stderr);
      assert.deepEqual(gc.stdout.split('\n').filter(Boolean), [], 'gc lists nothing');
      const done = performance.now();
      timings.push(
        `${pair.name}: ${before.length} objects; ingest ${((ingested - started) / 1000).toFixed(1)} s, migrate ${((migrated - ingested) / 1000).toFixed(1)} s, checks ${((done - migrated) / 1000).toFixed(1)} s`,
      );
    });
  });
}

before(async () => {
  await s3Admin.send(new CreateBucketCommand({ Bucket: s3.bucket }));
  await gcsAdmin.createBucket(gcs.bucket);
  await azureAdmin.getContainerClient(azure.container).create();
});

after(async () => {
  for (const key of await s3Keys('')) await s3Admin.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key }));
  for (const u of (await s3Admin.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket }))).Uploads ?? []) {
    await s3Admin.send(new AbortMultipartUploadCommand({ Bucket: s3.bucket, Key: u.Key!, UploadId: u.UploadId! }));
  }
  await s3Admin.send(new DeleteBucketCommand({ Bucket: s3.bucket }));
  s3Admin.destroy();
  await gcsAdmin.bucket(gcs.bucket).deleteFiles({ force: true });
  await gcsAdmin.bucket(gcs.bucket).delete();
  await azureAdmin.getContainerClient(azure.container).delete();
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
  if (timings.length > 0) console.log(timings.join('\n'));
});

const hotSchema = `em_hot_${run}`;
schemas.push(hotSchema);

migrationConformance({ name: 'local_file → s3', catalog: 'sqlite', source: localEnd('hot', zstd('low')), destination: { ...s3End('warm', 'l2s-warm', { algorithm: 'lz4', level: 'medium' }), expected: LZ4 } });
migrationConformance({ name: 's3 → local_file', catalog: 'sqlite', source: s3End('warm', 's2l-warm', { algorithm: 'lz4', level: 'medium' }), destination: { ...localEnd('cold', zstd('high')), expected: ZSTD(9) } });
migrationConformance({ name: 's3 → gcs', catalog: 'postgresql', source: s3End('warm', 's2g-warm', zstd('medium')), destination: { ...gcsEnd('cold', 's2g-cold', zstd('high')), expected: ZSTD(9) } });
migrationConformance({
  name: 's3 → gcs, same codec (raw streamed copy)', catalog: 'postgresql', rawCopy: true,
  source: s3End('warm', 's2g-raw-warm', zstd('high')), destination: { ...gcsEnd('cold', 's2g-raw-cold', zstd('high')), expected: ZSTD(9) },
});
migrationConformance({
  name: 'gcs → azure_blob (archive)', catalog: 'postgresql', archive: true, crashAt: 'migration.verified',
  source: gcsEnd('cold', 'g2a-cold', zstd('high')), destination: { ...azureArchiveEnd('glacier', 'g2a-glacier', zstd('maximum')), expected: ZSTD(19) },
});
migrationConformance({ name: 'postgresql (PostGIS rows) → s3', catalog: 'postgresql', source: postgisEnd('hot', hotSchema), destination: { ...s3End('warm', 'p2s-warm', { algorithm: 'lz4', level: 'medium' }), expected: LZ4 } });
migrationConformance({ name: 'sqlite (SpatiaLite rows) → local_file', catalog: 'sqlite', source: spatialiteEnd('hot'), destination: { ...localEnd('warm', zstd('high')), expected: ZSTD(9) } });
migrationConformance({
  name: 'azure_blob (archive) → local_file', catalog: 'sqlite', archivedSource: true,
  source: azureArchiveEnd('glacier', 'a2l-glacier', zstd('high')), destination: { ...localEnd('cold', { algorithm: 'lz4', level: 'medium' }), expected: LZ4 },
});
migrationConformance({
  name: 'azure_blob (archive) → s3, same codec (raw streamed copy)', catalog: 'postgresql', archivedSource: true, rawCopy: true,
  source: azureArchiveEnd('glacier', 'a2s-glacier', zstd('high')), destination: { ...s3End('warm', 'a2s-warm', zstd('high')), expected: ZSTD(9) },
});

describe('MigrationJob local_file → s3: kill -9 in the middle of a multipart upload', () => {
  const dir = tempDir('migration-multipart-kill');
  after(() => rmSync(dir, { recursive: true, force: true }));
  const MiB = 1024 * 1024;
  const PART = 5 * MiB;
  const SIZE = 20 * MiB + 12_345;
  const prefix = `${run}/mp-warm/`;

  it('resumes to one copy with the right bytes, the source gone, and gc finds and aborts the unfinished upload', { timeout: 120_000 }, async () => {
    const started = performance.now();
    // The same codec at both ends (a raw streamed copy, 8 MiB chunks) into S3 parts of 5 MiB (the
    // minimum), one part in flight: a 20 MiB object is a multipart upload of 5 parts.
    const pair: Pair = {
      name: 'local_file → s3 multipart', catalog: 'sqlite', rawCopy: true,
      source: localEnd('hot', zstd('low')),
      destination: { ...s3End('warm', 'mp-warm', zstd('low'), { part_size: '5MiB', max_concurrent_parts: 1 }), expected: ZSTD(1) },
    };
    const pipeline = writePipeline(dir, join(dir, 'none.ndjson'), pair, '');
    const codex = MemoryCodex.fromFile(pipeline);

    // A 20 MiB object in hot, catalogued by hand (its bytes are never decoded: same codec both ends),
    // under the key its identity gives, which the copy keeps.
    const provenance = [{ source: 'big', partition: 0, firstOffset: 0, lastOffset: 0, count: 1 }];
    const key = objectKey('ObservationMemory', '2024/03/big', provenance, '.parquet');
    const file = join(dir, 'hot', key);
    mkdirSync(dirname(file), { recursive: true });
    const digest = createHash('sha256');
    const out = openSync(file, 'w');
    for (let at = 0; at < SIZE; at += MiB) {
      const chunk = randomBytes(Math.min(MiB, SIZE - at));
      digest.update(chunk);
      writeSync(out, chunk);
    }
    closeSync(out);
    const sha256 = digest.digest('hex');
    const catalog = new SqliteCatalog(join(dir, 'catalog.sqlite'));
    await catalog.upsert([{
      key, tier: 'hot', backend: 'local_file', uri: file, memoryType: 'ObservationMemory', dataset: 'big', kind: 'point', partitionPath: '2024/03/big',
      format: 'parquet', codec: 'zstd', codecLevel: 1, bytes: SIZE, rows: 1, timeMinUs: 0, timeMaxUs: 0, bbox: [0, 0, 0, 0],
      sha256, provenance, state: 'committed',
    }]);
    await catalog.close();

    const id = 'multipart-kill';
    const job = ['migrate', pipeline, '--id', id, '--source-tier', 'hot', '--destination-tier', 'warm', '--concurrency', '1'];
    const earthmem = (args: string[], env: NodeJS.ProcessEnv = {}) => spawnSync(process.execPath, ['bin/earthmem.js', ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
    const gc = (...flags: string[]) => {
      const r = earthmem(['gc', pipeline, '--grace', '0s', '--json', ...flags]);
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { tier: string; backend: string; key: string; bytes: number; action: string; incomplete: boolean });
    };
    const uploads = async () => (await s3Admin.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix: prefix }))).Uploads ?? [];
    const stepStates = async () => withStorage(codex, async (s) => (await s.catalog.migrationJob(id))!.steps.map((step) => step.state));

    // Killed right after the first 8 MiB chunk went to the put: the S3 put reads two parts before
    // it chooses between one PutObject and a multipart upload, so it has sent nothing yet.
    const early = earthmem(job, { EARTHMEM_FAILPOINT: 'migration.copying' });
    assert.equal(early.signal, 'SIGKILL', `${early.stdout}${early.stderr}`);
    assert.deepEqual(await uploads(), [], 'no upload was started before the first crash point');
    assert.deepEqual(gc(), []);
    assert.deepEqual(await stepStates(), ['planned']);

    // Killed after the second chunk: the multipart upload is created and has parts, not completed.
    const killed = earthmem(job, { EARTHMEM_FAILPOINT: 'migration.copying@2' });
    assert.equal(killed.signal, 'SIGKILL', `${killed.stdout}${killed.stderr}`);
    assert.match(killed.stderr, /migration multipart-kill: resuming, 1 of 1 objects still to do/);
    const [upload, ...more] = await uploads();
    assert.deepEqual(more, [], 'one unfinished upload');
    assert.equal(upload!.Key, `${prefix}${key}`);
    const parts = (await s3Admin.send(new ListPartsCommand({ Bucket: s3.bucket, Key: upload!.Key!, UploadId: upload!.UploadId! }))).Parts ?? [];
    const uploaded = parts.reduce((n, p) => n + (p.Size ?? 0), 0);
    assert.ok(uploaded > 0 && uploaded < SIZE && uploaded % PART === 0, `${parts.length} parts, ${uploaded} bytes uploaded of ${SIZE}`);
    assert.deepEqual(await s3Keys(prefix), [], 'no object in S3: the upload was not completed');
    assert.deepEqual(await stepStates(), ['planned'], 'the copy was not journaled');
    assert.deepEqual(localKeys(join(dir, 'hot')), [key], 'the source is intact');
    assert.deepEqual(gc(), [{ tier: 'warm', backend: 's3', key, bytes: uploaded, modified: upload!.Initiated!.toISOString(), action: 'listed', incomplete: true }]);
    const crashed = performance.now();

    // The same job again: completed, one object in S3 with the source's bytes, the source gone.
    const resumed = earthmem(job);
    assert.equal(resumed.status, 0, `${resumed.stdout}${resumed.stderr}`);
    assert.match(resumed.stderr, /migration multipart-kill: resuming, 1 of 1 objects still to do/);
    const resumedAt = performance.now();
    const status = await codex.getMigrationStatus(id);
    assert.deepEqual([status.state, status.objects_done, status.objects_failed, status.bytes_migrated, status.errors], ['completed', 1, 0, SIZE, []]);
    const journal = await withStorage(codex, async (s) => (await s.catalog.migrationJob(id))!);
    assert.deepEqual(journal.steps.map((step) => [step.state, step.written?.manifest]), [['source_deleted', null]], 'a raw copy, source deleted');
    const rows = await codex.listObjects();
    assert.deepEqual(rows.map((r) => [r.tier, r.backend, r.key, r.bytes, r.sha256, r.state]), [['warm', 's3', key, SIZE, sha256, 'committed']], 'one catalog row, in S3');
    assert.deepEqual(await s3Keys(prefix), [key], 'one object in S3');
    const object = await s3Admin.send(new GetObjectCommand({ Bucket: s3.bucket, Key: `${prefix}${key}` }));
    const downloaded = await object.Body!.transformToByteArray();
    assert.equal(downloaded.byteLength, SIZE);
    assert.equal(createHash('sha256').update(downloaded).digest('hex'), sha256, 'the downloaded object has the source\'s bytes');
    const read = await codex.read(key);
    assert.equal(createHash('sha256').update((read as { bytes: Uint8Array }).bytes).digest('hex'), sha256, 'read through the catalog');
    assert.deepEqual(localKeys(join(dir, 'hot')), [], 'the source is deleted, and no temporary file is left');

    // The killed upload is still there until gc aborts it; then nothing is left.
    const orphaned = gc();
    assert.deepEqual(orphaned.map((o) => [o.key, o.bytes, o.incomplete, o.action]), [[key, uploaded, true, 'listed']]);
    assert.deepEqual(gc('--delete').map((o) => [o.key, o.incomplete, o.action]), [[key, true, 'deleted']]);
    assert.deepEqual(gc(), [], 'gc lists nothing');
    assert.deepEqual(await uploads(), [], 'the upload was aborted on the server');
    assert.deepEqual(await s3Keys(prefix), [key], 'gc left the object alone');
    const done = performance.now();
    timings.push(
      `local_file → s3 multipart kill: ${SIZE} bytes, killed with ${parts.length} parts (${uploaded} bytes) uploaded; two killed runs ${((crashed - started) / 1000).toFixed(1)} s, resumed run ${((resumedAt - crashed) / 1000).toFixed(1)} s, checks and gc ${((done - resumedAt) / 1000).toFixed(1)} s`,
    );
  });
});
