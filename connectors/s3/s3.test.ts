/**
 * S3Storage against the real versitygw that `scripts/services up s3` starts (node scripts/test.mjs
 * exports its settings). The conformance suite runs in a fresh bucket without versioning; the
 * object-lock and versioning tests use the service's S3_BUCKET_WARM (object lock + versioning).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  ListObjectsV2Command,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { backendConformance } from '../../test/conformance/backend-suite.js';
import { AccessDeniedError, NotFoundError, ObjectLockedError, StorageError } from '../../src/core/errors.js';
import { s3BackendSchema, type S3BackendConfig } from './config.js';
import { S3Storage, s3Failure } from './storage.js';

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run the tests with node scripts/test.mjs (it starts versitygw with scripts/services up s3 and exports scripts/services env)`);
  }
  return value;
}

const endpoint = required('S3_ENDPOINT');
const region = required('AWS_REGION');
const accessKey = required('AWS_ACCESS_KEY_ID');
const secretKey = required('AWS_SECRET_ACCESS_KEY');
const warmBucket = required('S3_BUCKET_WARM');
const badSecret = `wrong-${randomBytes(8).toString('hex')}`;

const MiB = 1024 * 1024;
const run = `s3-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
const text = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

/** A config as the pipeline file would give it (credentials from the SDK's env chain unless set). */
function configFor(fields: Record<string, unknown>): S3BackendConfig {
  return s3BackendSchema.parse({ type: 's3', bucket: warmBucket, region, endpoint, ...fields });
}

/** The server as an administrator sees it, for checks and cleanup behind the backend's back. */
const admin = new S3Client({ region, endpoint, forcePathStyle: true, credentials: { accessKeyId: accessKey, secretAccessKey: secretKey } });

/** A fresh bucket without versioning for the conformance suite; emptied and removed at the end. */
const plainBucket = `earthmem-test-${run}`;
await admin.send(new CreateBucketCommand({ Bucket: plainBucket }));

async function emptyAndRemove(bucket: string): Promise<void> {
  let token: string | undefined;
  do {
    const page = await admin.send(new ListObjectsV2Command({ Bucket: bucket, ...(token ? { ContinuationToken: token } : {}) }));
    for (const object of page.Contents ?? []) await admin.send(new DeleteObjectCommand({ Bucket: bucket, Key: object.Key! }));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  await admin.send(new DeleteBucketCommand({ Bucket: bucket }));
}

after(async () => {
  await emptyAndRemove(plainBucket);
  admin.destroy();
});

/** Headers of every request the backend's client sends (observed on the wire side of the SDK). */
function recordRequests(storage: S3Storage): { method: string; path: string; query: Record<string, unknown>; headers: Record<string, string> }[] {
  const seen: { method: string; path: string; query: Record<string, unknown>; headers: Record<string, string> }[] = [];
  storage.client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { method: string; path: string; query: Record<string, unknown>; headers: Record<string, string> };
      seen.push({ method: request.method, path: request.path, query: { ...request.query }, headers: { ...request.headers } });
      return next(args);
    },
    { step: 'finalizeRequest', name: 'earthmemRecordRequests' },
  );
  return seen;
}

async function* chunks(size: number, chunkSize = MiB): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < size; at += chunkSize) yield new Uint8Array(Math.min(chunkSize, size - at)).fill(at % 251);
}

backendConformance({
  name: 's3 (versitygw)',
  open: async () => S3Storage.open(configFor({ bucket: plainBucket, prefix: 'tests/' })),
  openUnreachable: async () => new S3Storage(configFor({ bucket: plainBucket, endpoint: 'http://127.0.0.1:1', connect_timeout: '2s' })),
  openBadCredentials: async () =>
    new S3Storage(configFor({ bucket: plainBucket, credentials: { aws_access_key_id: accessKey, aws_secret_access_key: badSecret } })),
  secrets: [secretKey, badSecret],
});

describe('s3 config', () => {
  it('fills defaults and parses sizes and durations', () => {
    const config = s3BackendSchema.parse({ type: 's3', bucket: 'b', region: 'us-west-2', part_size: '16MiB', request_timeout: '30s' });
    assert.equal(config.prefix, '');
    assert.equal(config.part_size, 16 * MiB);
    assert.equal(config.max_concurrent_parts, 4);
    assert.equal(config.request_timeout, 30_000);
    assert.equal(config.format, undefined); // unset: the storage's default_*_format per kind
    assert.equal(config.force_path_style, undefined);
    assert.equal(s3BackendSchema.parse({ type: 's3', bucket: 'b', region: 'r' }).part_size, 8 * MiB);
  });

  it('rejects unknown keys, parts under 5 MiB and a KMS key without aws:kms', () => {
    assert.throws(() => s3BackendSchema.parse({ type: 's3', bucket: 'b', region: 'r', bucket_name: 'x' }));
    assert.throws(() => s3BackendSchema.parse({ type: 's3', bucket: 'b', region: 'r', part_size: '4MiB' }), /5MiB/);
    assert.throws(() => s3BackendSchema.parse({ type: 's3', bucket: 'b', region: 'r', encryption: { algorithm: 'AES256', kms_key_id: 'k' } }), /aws:kms/);
    assert.equal(s3BackendSchema.parse({ type: 's3', bucket: 'b', region: 'r', encryption: { algorithm: 'AES256', kms_key_id: null } }).encryption?.algorithm, 'AES256');
  });

  it('keeps credentials out of location and uri', () => {
    const storage = new S3Storage(
      configFor({ endpoint: 'http://user:endpoint-pass@127.0.0.1:9/', prefix: 'data/', credentials: { aws_access_key_id: accessKey, aws_secret_access_key: secretKey } }),
    );
    assert.equal(storage.location, `s3://${warmBucket}/data/ at http://127.0.0.1:9`);
    assert.equal(storage.uri('a/b.parquet'), `s3://${warmBucket}/data/a/b.parquet`);
    for (const text of [storage.location, storage.uri('x')]) {
      assert.ok(!text.includes(secretKey) && !text.includes('endpoint-pass'));
    }
  });
});

describe('s3 specifics (versitygw)', () => {
  const warmKeys = new Set<string>();

  after(async () => {
    // purge every version this file left in the warm bucket (retention has passed by now)
    for (const key of warmKeys) {
      const versions = await admin.send(new ListObjectVersionsCommand({ Bucket: warmBucket, Prefix: key }));
      for (const v of [...(versions.Versions ?? []), ...(versions.DeleteMarkers ?? [])]) {
        if (v.Key === key) await admin.send(new DeleteObjectCommand({ Bucket: warmBucket, Key: key, VersionId: v.VersionId! }));
      }
    }
  });

  it('open() probes the bucket: versioning and object lock on the warm bucket, neither on a plain one', async () => {
    const warm = await S3Storage.open(configFor({}));
    const plain = await S3Storage.open(configFor({ bucket: plainBucket }));
    try {
      assert.equal(warm.capabilities.versioning, true);
      assert.equal(warm.capabilities.immutability, true);
      assert.equal(plain.capabilities.versioning, false);
      assert.equal(plain.capabilities.immutability, false);
      for (const c of [warm.capabilities, plain.capabilities]) {
        assert.equal(c.rangeReads && c.multipart && c.accessTiers && c.serverSideEncryption, true);
      }
    } finally {
      await warm.close();
      await plain.close();
    }
  });

  it('open() of a missing bucket fails, not retriable, naming the bucket', async () => {
    await assert.rejects(S3Storage.open(configFor({ bucket: `missing-${run}` })), (error: unknown) => {
      assert.ok(error instanceof StorageError && !(error instanceof NotFoundError), String(error));
      assert.equal(error.retriable, false);
      assert.match(error.message, new RegExp(`missing-${run} does not exist`));
      return true;
    });
  });

  it('a read from a missing bucket is a configuration failure, not "object not found"', async () => {
    const storage = new S3Storage(configFor({ bucket: `missing-${run}` }));
    try {
      await assert.rejects(storage.get('x'), (error: unknown) => {
        assert.ok(error instanceof StorageError && !(error instanceof NotFoundError), String(error));
        assert.equal(error.retriable, false);
        return true;
      });
    } finally {
      await storage.close();
    }
  });

  it('an unknown access key is AccessDeniedError', async () => {
    const storage = new S3Storage(configFor({ bucket: plainBucket, credentials: { aws_access_key_id: 'no-such-key', aws_secret_access_key: badSecret } }));
    try {
      for (const operation of [() => storage.put(`${run}/x`, text('x')), () => storage.stat(`${run}/x`)]) {
        await assert.rejects(operation(), (error: unknown) => error instanceof AccessDeniedError && !error.describe().includes(badSecret));
      }
    } finally {
      await storage.close();
    }
  });

  it('sends SSE AES256 and aws:kms parameters, on single and multipart uploads', async () => {
    const aes = new S3Storage(configFor({ bucket: plainBucket, prefix: `${run}/sse/`, encryption: { algorithm: 'AES256' }, part_size: '5MiB' }));
    const kms = new S3Storage(configFor({ bucket: plainBucket, prefix: `${run}/sse/`, encryption: { algorithm: 'aws:kms', kms_key_id: 'alias/earth-memory' } }));
    const aesRequests = recordRequests(aes);
    const kmsRequests = recordRequests(kms);
    try {
      await aes.put('small.bin', text('secret sauce'));
      await aes.put('multi.bin', chunks(6 * MiB));
      await kms.put('kms.bin', text('k'));
      const writes = aesRequests.filter((r) => r.method === 'PUT' || (r.method === 'POST' && 'uploads' in r.query));
      const sse = (r: { headers: Record<string, string> }) => r.headers['x-amz-server-side-encryption'];
      assert.equal(sse(writes[0]!), 'AES256', 'PutObject carries SSE');
      const create = aesRequests.find((r) => r.method === 'POST' && 'uploads' in r.query);
      assert.equal(create && sse(create), 'AES256', 'CreateMultipartUpload carries SSE');
      assert.ok(aesRequests.some((r) => 'partNumber' in r.query), 'the 6 MiB body went up in parts');
      const kmsPut = kmsRequests.find((r) => r.method === 'PUT')!;
      assert.equal(sse(kmsPut), 'aws:kms');
      assert.equal(kmsPut.headers['x-amz-server-side-encryption-aws-kms-key-id'], 'alias/earth-memory');
      assert.equal(decode(await aes.get('small.bin')), 'secret sauce');
      // versitygw (posix) accepts the SSE headers and does not store or report them: HeadObject
      // carries no ServerSideEncryption. AWS S3 reports AES256 / aws:kms here.
      const head = await admin.send(new HeadObjectCommand({ Bucket: plainBucket, Key: `${run}/sse/small.bin` }));
      assert.equal(head.ServerSideEncryption, undefined);
    } finally {
      await aes.close();
      await kms.close();
    }
  });

  it('passes storage_class and access tiers through as StorageClass', async () => {
    const storage = new S3Storage(configFor({ bucket: plainBucket, prefix: `${run}/class/`, storage_class: 'STANDARD_IA' }));
    const requests = recordRequests(storage);
    try {
      const configured = await storage.put('configured.bin', text('a'));
      const archived = await storage.put('archived.bin', text('b'), { accessTier: 'archive' });
      const puts = requests.filter((r) => r.method === 'PUT');
      assert.equal(puts[0]!.headers['x-amz-storage-class'], 'STANDARD_IA');
      assert.equal(puts[1]!.headers['x-amz-storage-class'], 'GLACIER');
      assert.equal(configured.accessTier, 'STANDARD_IA');
      assert.equal(archived.accessTier, 'GLACIER');
      // versitygw (posix) keeps no storage classes: it answers STANDARD for every object
      assert.equal((await storage.stat('archived.bin')).accessTier, 'STANDARD');
    } finally {
      await storage.close();
    }
  });

  it('retainUntil locks the version: overwrite and delete keep it, deleting it is ObjectLockedError until the date', { timeout: 60_000 }, async () => {
    const storage = await S3Storage.open(configFor({ prefix: `${run}/lock/`, part_size: '5MiB' }));
    const key = 'locked.txt';
    const fullKey = `${run}/lock/${key}`;
    warmKeys.add(fullKey);
    warmKeys.add(`${run}/lock/multipart.bin`);
    try {
      const retainUntil = new Date(Math.ceil((Date.now() + 4000) / 1000) * 1000);
      await storage.put(key, text('first'), { retainUntil });
      const head = await admin.send(new HeadObjectCommand({ Bucket: warmBucket, Key: fullKey }));
      assert.equal(head.ObjectLockMode, 'COMPLIANCE');
      assert.equal(head.ObjectLockRetainUntilDate?.getTime(), retainUntil.getTime());
      const lockedVersion = head.VersionId!;

      // an overwrite adds a version, a delete adds a delete marker: both allowed, the locked version stays
      await storage.put(key, text('second'));
      assert.equal(decode(await storage.get(key)), 'second');
      await storage.delete(key);
      await assert.rejects(storage.get(key), NotFoundError);
      const kept = await admin.send(new GetObjectCommand({ Bucket: warmBucket, Key: fullKey, VersionId: lockedVersion }));
      assert.equal(decode(await kept.Body!.transformToByteArray()), 'first');

      // removing the locked version itself is refused
      const refusal = await admin.send(new DeleteObjectCommand({ Bucket: warmBucket, Key: fullKey, VersionId: lockedVersion })).then(
        () => assert.fail('the locked version was deleted'),
        (cause: unknown) => s3Failure(cause, 'delete', key, warmBucket),
      );
      assert.ok(refusal instanceof ObjectLockedError, `expected ObjectLockedError, got ${refusal.describe()}`);
      assert.equal(refusal.retriable, false);

      // a multipart upload takes the lock too
      await storage.put('multipart.bin', chunks(6 * MiB), { retainUntil });
      const multipartHead = await admin.send(new HeadObjectCommand({ Bucket: warmBucket, Key: `${run}/lock/multipart.bin` }));
      assert.equal(multipartHead.ObjectLockMode, 'COMPLIANCE');
      assert.equal(multipartHead.ContentLength, 6 * MiB);

      // after the date the version can go
      await new Promise((resolve) => setTimeout(resolve, retainUntil.getTime() - Date.now() + 1500));
      await admin.send(new DeleteObjectCommand({ Bucket: warmBucket, Key: fullKey, VersionId: lockedVersion }));
    } finally {
      await storage.close();
    }
  });

  it('keeps backends with different prefixes apart and strips the prefix in list', async () => {
    const a = new S3Storage(configFor({ bucket: plainBucket, prefix: `${run}/iso-a/` }));
    const b = new S3Storage(configFor({ bucket: plainBucket, prefix: `${run}/iso-b/` }));
    const root = new S3Storage(configFor({ bucket: plainBucket }));
    try {
      await a.put('same/key.txt', text('from a'));
      await b.put('same/key.txt', text('from b'));
      await b.put('only-b.txt', text('b'));
      assert.equal(decode(await a.get('same/key.txt')), 'from a');
      assert.equal(decode(await b.get('same/key.txt')), 'from b');
      await assert.rejects(a.stat('only-b.txt'), NotFoundError);
      const listed = async (s: S3Storage, prefix: string) => {
        const keys: string[] = [];
        for await (const entry of s.list(prefix)) keys.push(entry.key);
        return keys.sort();
      };
      assert.deepEqual(await listed(a, ''), ['same/key.txt']);
      assert.deepEqual(await listed(b, ''), ['only-b.txt', 'same/key.txt']);
      assert.deepEqual(await listed(root, `${run}/iso-a/`), [`${run}/iso-a/same/key.txt`]);
      assert.equal(a.uri('same/key.txt'), `s3://${plainBucket}/${run}/iso-a/same/key.txt`);
      await a.delete('same/key.txt');
      assert.equal(decode(await b.get('same/key.txt')), 'from b');
    } finally {
      await Promise.all([a.close(), b.close(), root.close()]);
    }
  });

  it('lists past one page (ListObjectsV2 continuation)', async () => {
    const storage = new S3Storage(configFor({ bucket: plainBucket, prefix: `${run}/pages/` }));
    try {
      const keys = Array.from({ length: 1005 }, (_, i) => `k${String(i).padStart(4, '0')}`);
      for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => storage.put(k, new Uint8Array(0))));
      const listed: string[] = [];
      for await (const entry of storage.list('')) listed.push(entry.key);
      assert.deepEqual(listed.sort(), keys);
    } finally {
      await storage.close();
    }
  });

  it('a body that fails mid-upload aborts the multipart upload and leaves no object', async () => {
    const storage = new S3Storage(configFor({ bucket: plainBucket, prefix: `${run}/abort/`, part_size: '5MiB' }));
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield* chunks(12 * MiB);
      throw new Error('sensor feed broke');
    }
    try {
      await assert.rejects(storage.put('broken.bin', failing()), (error: unknown) => error instanceof StorageError && /sensor feed broke/.test(error.describe()));
      await assert.rejects(storage.stat('broken.bin'), NotFoundError);
      const uploads = await admin.send(new ListMultipartUploadsCommand({ Bucket: plainBucket, Prefix: `${run}/abort/` }));
      assert.deepEqual(uploads.Uploads ?? [], []);
    } finally {
      await storage.close();
    }
  });

  it('incompleteWrites lists an unfinished multipart upload under the prefix with its parts\' bytes; remove() aborts it', async () => {
    const storage = new S3Storage(configFor({ bucket: plainBucket, prefix: `${run}/unfinished/` }));
    const missing = new S3Storage(configFor({ bucket: `missing-${run}` }));
    const started = Date.now();
    const upload = await admin.send(new CreateMultipartUploadCommand({ Bucket: plainBucket, Key: `${run}/unfinished/half/way.bin` }));
    const target = { Bucket: plainBucket, Key: `${run}/unfinished/half/way.bin`, UploadId: upload.UploadId! };
    await admin.send(new UploadPartCommand({ ...target, PartNumber: 1, Body: new Uint8Array(5 * MiB).fill(7) }));
    await admin.send(new UploadPartCommand({ ...target, PartNumber: 2, Body: text('tail') }));
    // another backend's prefix: not this backend's unfinished write
    const elsewhere = await admin.send(new CreateMultipartUploadCommand({ Bucket: plainBucket, Key: `${run}/unfinished-not/x.bin` }));
    const unfinished = async () => {
      const found = [];
      for await (const write of storage.incompleteWrites()) found.push(write);
      return found;
    };
    try {
      const [write, ...more] = await unfinished();
      assert.deepEqual(more, []);
      assert.equal(write!.key, 'half/way.bin', 'relative to the prefix, like list()');
      assert.equal(write!.size, 5 * MiB + 4, 'the uploaded parts');
      // versitygw reports Initiated with one-second precision
      assert.ok(Math.abs(write!.modified!.getTime() - started) < 5_000, `initiated ${write!.modified!.toISOString()}`);
      const listed = [];
      for await (const entry of storage.list('')) listed.push(entry.key);
      assert.deepEqual(listed, [], 'an unfinished upload is no object');
      await assert.rejects(storage.stat('half/way.bin'), NotFoundError);

      await write!.remove();
      assert.deepEqual(await unfinished(), []);
      const uploads = await admin.send(new ListMultipartUploadsCommand({ Bucket: plainBucket, Prefix: `${run}/unfinished/` }));
      assert.deepEqual(uploads.Uploads ?? [], [], 'aborted on the server');
      await write!.remove(); // already gone (NoSuchUpload): not an error
      const other = await admin.send(new ListMultipartUploadsCommand({ Bucket: plainBucket, Prefix: `${run}/unfinished-not/` }));
      assert.deepEqual(other.Uploads?.map((u) => u.UploadId), [elsewhere.UploadId], 'the other prefix\'s upload is untouched');

      await assert.rejects(
        (async () => {
          for await (const _ of missing.incompleteWrites()) assert.fail('listed an upload of a missing bucket');
        })(),
        (error: unknown) => error instanceof StorageError && !(error instanceof NotFoundError) && error.retriable === false,
      );
    } finally {
      await admin.send(new AbortMultipartUploadCommand({ Bucket: plainBucket, Key: `${run}/unfinished-not/x.bin`, UploadId: elsewhere.UploadId! }));
      await admin.send(new AbortMultipartUploadCommand(target)).catch(() => undefined);
      await Promise.all([storage.close(), missing.close()]);
    }
  });

  it('incompleteWrites lists past one page of uploads, a key whose uploads straddle the page end included', { timeout: 120_000 }, async () => {
    const storage = new S3Storage(configFor({ bucket: plainBucket, prefix: `${run}/many-uploads/` }));
    // 1000 keys and a second upload of the 1000th (the page ends between its two uploads), then one more key
    const keys = [...Array.from({ length: 1001 }, (_, i) => `k${String(i).padStart(4, '0')}`), 'k0999'];
    const started: { key: string; uploadId: string }[] = [];
    try {
      for (let i = 0; i < keys.length; i += 50) {
        const batch = keys.slice(i, i + 50);
        const made = await Promise.all(batch.map((key) => admin.send(new CreateMultipartUploadCommand({ Bucket: plainBucket, Key: `${run}/many-uploads/${key}` }))));
        started.push(...made.map((m, j) => ({ key: batch[j]!, uploadId: m.UploadId! })));
      }
      const first = await admin.send(new ListMultipartUploadsCommand({ Bucket: plainBucket, Prefix: `${run}/many-uploads/` }));
      assert.equal(first.IsTruncated, true);
      assert.equal(first.Uploads?.at(-1)?.Key, `${run}/many-uploads/k0999`, 'the first page ends inside k0999\'s uploads');
      const listed: { key: string; remove(): Promise<void> }[] = [];
      for await (const write of storage.incompleteWrites()) listed.push(write);
      assert.deepEqual(listed.map((w) => w.key).sort(), [...keys].sort(), 'every upload once');
      for (let i = 0; i < listed.length; i += 50) await Promise.all(listed.slice(i, i + 50).map((w) => w.remove()));
      const left = await admin.send(new ListMultipartUploadsCommand({ Bucket: plainBucket, Prefix: `${run}/many-uploads/` }));
      assert.deepEqual(left.Uploads ?? [], []);
    } finally {
      for (let i = 0; i < started.length; i += 50) {
        await Promise.all(
          started.slice(i, i + 50).map((u) =>
            admin.send(new AbortMultipartUploadCommand({ Bucket: plainBucket, Key: `${run}/many-uploads/${u.key}`, UploadId: u.uploadId })).catch(() => undefined),
          ),
        );
      }
      await storage.close();
    }
  });

  it('getRange past the end is empty; zero length checks the key exists', async () => {
    const storage = new S3Storage(configFor({ bucket: plainBucket, prefix: `${run}/ranges/` }));
    try {
      await storage.put('ten.txt', text('0123456789'));
      assert.equal((await storage.getRange('ten.txt', 10, 5)).byteLength, 0);
      assert.equal((await storage.getRange('ten.txt', 3, 0)).byteLength, 0);
      await assert.rejects(storage.getRange('nothing.txt', 0, 0), NotFoundError);
    } finally {
      await storage.close();
    }
  });
});
