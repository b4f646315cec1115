/**
 * Zarr stores on the object-store tiers (versitygw S3, fake-gcs-server, Azurite): the same
 * pipeline into each writes keys byte-identical to the local store; the catalog lists one row per
 * store with format zarr and the store's root as uri; the keys, fetched back, open in xarray.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Storage } from '@google-cloud/storage';
import { BlobServiceClient } from '@azure/storage-blob';
import { loadConfigFile } from '../../src/config/load.js';
import { openStorage } from '../../src/pipeline/read.js';
import { pipelineSchema } from '../../src/pipeline/schema.js';
import { writeSample } from '../../src/records/sample.js';
import { tempDir } from '../support/fixtures.js';
import { checkZarr } from '../support/python.js';

const required = (name: string): string => {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`${name} is not set: eval "$(scripts/services env --export)"`);
  return v;
};
const run = `zs${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
const bucket = `earthmem-${run}`;
const s3Admin = new S3Client({
  region: required('AWS_REGION'), endpoint: required('S3_ENDPOINT'), forcePathStyle: true,
  credentials: { accessKeyId: required('AWS_ACCESS_KEY_ID'), secretAccessKey: required('AWS_SECRET_ACCESS_KEY') },
});
const gcsAdmin = new Storage({ apiEndpoint: required('GCS_ENDPOINT'), projectId: required('GCS_PROJECT'), useAuthWithCustomEndpoint: false });
const azureAdmin = BlobServiceClient.fromConnectionString(required('AZURE_CONNECTION_STRING'));

const base = tempDir('zarr-objects');
const input = join(base, 'in.ndjson');

const backends: Record<string, string> = {
  local_file: `{ type: local_file, base_path: ${join(base, 'local')}, format: zarr, zarr_format: 3, compression: gzip, compression_level: 5 }`,
  s3: `{ type: s3, bucket: ${bucket}, region: "\${AWS_REGION}", endpoint: "\${S3_ENDPOINT}", prefix: ${run}/, format: zarr, zarr_format: 3, compression: gzip, compression_level: 5, credentials: { aws_access_key_id: "\${AWS_ACCESS_KEY_ID}", aws_secret_access_key: "\${AWS_SECRET_ACCESS_KEY}" } }`,
  gcs: `{ type: gcs, bucket: ${bucket}, project: "\${GCS_PROJECT}", endpoint: "\${GCS_ENDPOINT}", prefix: ${run}/, format: zarr, zarr_format: 3, compression: gzip, compression_level: 5 }`,
  azure_blob: `{ type: azure_blob, account: "\${AZURE_ACCOUNT}", container: ${bucket}, connection_string: "\${AZURE_CONNECTION_STRING}", prefix: ${run}/, format: zarr, zarr_format: 3, compression: gzip, compression_level: 5 }`,
};

function pipeline(name: string): string {
  const dir = join(base, name);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'pipeline.yaml');
  writeFileSync(file, `source: { type: file, path: ${input} }
classify: { rules: [{ match: { kind: point }, memory_type: StationMemory }], default: dead_letter }
batch: { max_rows: 400, encode_workers: 0 }
storage: { tier_configs: { cold: { primary_backend: ${backends[name]} } } }
routing: { default: cold }
catalog: { type: sqlite, path: ${join(dir, 'catalog.sqlite')} }
dead_letter: { type: local_file, path: ${join(dir, 'dead.ndjson')} }
`);
  return file;
}

/** Every key of the tier, fetched through its backend into `into`: key → sha256. */
async function fetchAll(file: string, into: string): Promise<Record<string, string>> {
  const storage = await openStorage(loadConfigFile(file, pipelineSchema).config);
  const out: Record<string, string> = {};
  try {
    const sink = storage.tiers.get('cold')!.primary;
    assert.equal(sink.kind, 'store');
    if (sink.kind !== 'store') return out;
    for await (const { key } of sink.backend.list('')) {
      if (key.endsWith('.tmp')) continue;
      const bytes = await sink.backend.get(key);
      mkdirSync(dirname(join(into, key)), { recursive: true });
      writeFileSync(join(into, key), bytes);
      out[key] = createHash('sha256').update(bytes).digest('hex');
    }
  } finally {
    await storage.close();
  }
  return out;
}

describe('Zarr stores on S3, GCS and Azure tiers', () => {
  let reference: Record<string, string>;
  before(async () => {
    await writeSample(input, { points: 1_500, features: 0, stations: 10, days: 2, badCopies: 0, seed: 11 });
    await s3Admin.send(new CreateBucketCommand({ Bucket: bucket }));
    await gcsAdmin.createBucket(bucket);
    await azureAdmin.getContainerClient(bucket).create();
    const file = pipeline('local_file');
    const ok = spawnSync(process.execPath, ['bin/earthmem.js', 'run', file], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    reference = {};
    const root = join(base, 'local');
    for (const d of readdirSync(root, { recursive: true, withFileTypes: true })) {
      if (d.isFile()) reference[join(d.parentPath, d.name).slice(root.length + 1)] = createHash('sha256').update(readFileSync(join(d.parentPath, d.name))).digest('hex');
    }
    assert.ok(Object.keys(reference).length > 10);
  });
  after(async () => {
    let token: string | undefined;
    do {
      const page = await s3Admin.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      for (const o of page.Contents ?? []) await s3Admin.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key! }));
      token = page.NextContinuationToken;
    } while (token !== undefined);
    await s3Admin.send(new DeleteBucketCommand({ Bucket: bucket }));
    await gcsAdmin.bucket(bucket).delete({ force: true } as never).catch(async () => {
      await gcsAdmin.bucket(bucket).deleteFiles({ force: true });
      await gcsAdmin.bucket(bucket).delete();
    });
    await azureAdmin.getContainerClient(bucket).delete();
  });

  for (const name of ['s3', 'gcs', 'azure_blob']) {
    it(`${name}: the same keys and bytes as the local store, one catalog row per store, readable by xarray`, async () => {
      const file = pipeline(name);
      const ran = spawnSync(process.execPath, ['bin/earthmem.js', 'run', file], { encoding: 'utf8' });
      assert.equal(ran.status, 0, ran.stderr);
      const fetched = join(base, `${name}-fetched`);
      assert.deepEqual(await fetchAll(file, fetched), reference);
      const ls = spawnSync(process.execPath, ['bin/earthmem.js', 'catalog', 'ls', file, '--json'], { encoding: 'utf8' });
      assert.equal(ls.status, 0, ls.stderr);
      const rows = ls.stdout.trim().split('\n').map((l) => JSON.parse(l) as { key: string; uri: string; format: string; backend: string; rows: number });
      assert.deepEqual(rows.map((r) => r.key).sort(), ['StationMemory/2024/03/era5-land.zarr', 'StationMemory/2024/03/noaa-isd.zarr']);
      for (const row of rows) {
        assert.equal(row.format, 'zarr');
        assert.equal(row.backend, name);
        assert.ok(row.uri.endsWith(`${run}/${row.key}`), row.uri);
        const got = checkZarr(join(fetched, row.key));
        assert.equal(got.zarr_format, 3);
        const values = Object.values(got.values).reduce((n, v) => n + v.data.flat().filter((x) => x !== null).length, 0);
        assert.equal(values, row.rows);
      }
    });
  }
});
