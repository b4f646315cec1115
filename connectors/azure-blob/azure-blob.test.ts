import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ArchivedObjectError, ConfigError, StorageError, isRetriable } from '../../src/core/errors.js';
import { backendConformance, listKeys, pattern, patternBytes } from '../../test/conformance/backend-suite.js';
import { azureBlobBackendSchema } from './config.js';
import { AzureBlobStorage } from './storage.js';

function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests through scripts/test.mjs with the azurite service (EARTHMEM_TEST_SERVICES=azurite)`);
  return value;
}

const connectionString = requireEnv('AZURE_CONNECTION_STRING');
const account = requireEnv('AZURE_ACCOUNT');
const container = requireEnv('AZURE_CONTAINER_GLACIER');
const accountKey = /AccountKey=([^;]+)/.exec(connectionString)?.[1] ?? '';
const blobEndpoint = /BlobEndpoint=([^;]+)/.exec(connectionString)?.[1] ?? '';
assert.ok(accountKey && blobEndpoint, 'AZURE_CONNECTION_STRING must carry AccountKey and BlobEndpoint');

/** Schema defaults plus the given YAML keys; no environment credentials unless passed. */
function open(yaml: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): AzureBlobStorage {
  return new AzureBlobStorage(azureBlobBackendSchema.parse({ type: 'azure_blob', account, container, ...yaml }), env);
}

const wrongKey = Buffer.from('not the azurite key, 64 bytes long................................').toString('base64');

backendConformance({
  name: 'azure_blob',
  open: async (prefix) => open({ prefix: `conformance/${prefix}`, connection_string: connectionString }),
  openUnreachable: async (prefix) =>
    open({ prefix, connection_string: connectionString.replace(/BlobEndpoint=[^;]+/, `BlobEndpoint=http://127.0.0.1:1/${account}`) }),
  openBadCredentials: async (prefix) =>
    open({ prefix, connection_string: connectionString.replace(/AccountKey=[^;]+/, `AccountKey=${wrongKey}`) }),
  secrets: [accountKey, wrongKey],
});

const text = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

describe('azure_blob access tiers', () => {
  const run = `tiers-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  let backend: AzureBlobStorage;
  let archive: AzureBlobStorage;

  before(() => {
    backend = open({ prefix: run, connection_string: connectionString });
    archive = open({ prefix: run, connection_string: connectionString, access_tier: 'archive' });
  });
  after(async () => {
    for (const key of await listKeys(backend, '')) await backend.delete(key);
    await backend.close();
    await archive.close();
  });

  it('writes into the configured tier (default hot) and into PutOptions.accessTier', async () => {
    await backend.put('default.txt', text('hot by default'));
    assert.equal((await backend.stat('default.txt')).accessTier, 'hot');
    await backend.put('cool.txt', text('cool'), { accessTier: 'cool' });
    assert.equal((await backend.stat('cool.txt')).accessTier, 'cool');
    const stat = await archive.put('archived.txt', text('deep'));
    assert.equal(stat.accessTier, 'archive');
    assert.equal((await archive.stat('archived.txt')).accessTier, 'archive');
  });

  it('puts the tier on block uploads too, and the list shows it', async () => {
    const small = open({ prefix: run, connection_string: connectionString, block_size: 64 * 1024, access_tier: 'cold', max_concurrent_blocks: 2 });
    const size = 300 * 1024 + 5;
    const stat = await small.put('blocks.bin', pattern(size, 3));
    assert.equal(stat.size, size);
    assert.deepEqual(await small.get('blocks.bin'), await patternBytes(size, 3));
    const listed = [];
    for await (const entry of small.list('blocks')) listed.push(entry);
    assert.deepEqual(
      listed.map((e) => [e.key, e.size, e.accessTier]),
      [['blocks.bin', size, 'cold']],
    );
  });

  it('refuses to read an archived blob with ArchivedObjectError saying to rehydrate first', async () => {
    await archive.put('sealed.txt', text('0123456789'));
    for (const read of [() => archive.get('sealed.txt'), () => archive.getRange('sealed.txt', 2, 3)]) {
      await assert.rejects(read(), (error: unknown) => {
        assert.ok(error instanceof ArchivedObjectError, `expected ArchivedObjectError, got ${String(error)}`);
        assert.equal(isRetriable(error), false);
        assert.match(error.message, /archive tier.*rehydrate it first/);
        assert.equal(error.context.key, 'sealed.txt');
        return true;
      });
    }
    // stat still works on an archived blob: the metadata stays online.
    assert.equal((await archive.stat('sealed.txt')).size, 10);
  });

  it('rehydrates an archived blob (Azurite: at once), then reads it', async () => {
    await archive.put('thaw.txt', text('0123456789'));
    await archive.rehydrate('thaw.txt', 'hot', 'High');
    const stat = await archive.stat('thaw.txt');
    // Azurite moves the blob at once; Azure would show archiveStatus rehydrate-pending-to-hot for hours.
    assert.equal(stat.accessTier, 'hot');
    assert.equal(stat.archiveStatus, undefined);
    assert.equal(decode(await archive.get('thaw.txt')), '0123456789');
    assert.equal(decode(await archive.getRange('thaw.txt', 7, 10)), '789');
  });

  it('changes tiers: hot → cool → cold → hot → archive', async () => {
    await backend.put('moving.txt', text('moves'));
    for (const tier of ['cool', 'cold', 'hot', 'archive'] as const) {
      await backend.setAccessTier('moving.txt', tier);
      assert.equal((await backend.stat('moving.txt')).accessTier, tier);
    }
    await assert.rejects(backend.get('moving.txt'), ArchivedObjectError);
  });
});

describe('azure_blob specifics', () => {
  const run = `spec-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;

  it('applies schema defaults and rejects unknown keys and bad names', () => {
    const config = azureBlobBackendSchema.parse({ type: 'azure_blob', account, container, prefix: 'sentinel' });
    assert.equal(config.prefix, 'sentinel/');
    assert.equal(config.access_tier, 'hot');
    assert.equal(config.block_size, 8 * 1024 * 1024);
    assert.equal(config.max_concurrent_blocks, 4);
    assert.equal(config.format, undefined); // unset: the storage's default_*_format per kind
    assert.equal(azureBlobBackendSchema.parse({ type: 'azure_blob', account, container, block_size: '1MiB' }).block_size, 1024 * 1024);
    for (const bad of [
      { type: 'azure_blob', account, container, acces_tier: 'hot' },
      { type: 'azure_blob', account, container, access_tier: 'glacier' },
      { type: 'azure_blob', account: 'Not-An-Account', container },
      { type: 'azure_blob', account, container: 'Bad_Container' },
      { type: 'azure_blob', account, container, block_size: 0 },
    ]) {
      assert.equal(azureBlobBackendSchema.safeParse(bad).success, false, JSON.stringify(bad));
    }
  });

  it('keeps credentials out of location and uri', () => {
    const backend = open({ prefix: 'sentinel/', connection_string: connectionString });
    assert.equal(backend.location, `${blobEndpoint}/${container}/sentinel/`);
    assert.equal(backend.uri('a b/c.parquet'), `${blobEndpoint}/${container}/sentinel/a%20b/c.parquet`);
    const sas = open({ connection_string: `BlobEndpoint=${blobEndpoint};SharedAccessSignature=sv=2024-08-04&sig=SECRETSIG` });
    for (const shown of [sas.location, sas.uri('k')]) assert.ok(!shown.includes('SECRETSIG'), shown);
  });

  it('takes the account key from AZURE_STORAGE_KEY with endpoint', async () => {
    const backend = open({ prefix: run, endpoint: blobEndpoint }, { AZURE_STORAGE_KEY: accountKey });
    await backend.put('key-auth.txt', text('by key'));
    assert.equal(decode(await backend.get('key-auth.txt')), 'by key');
    await backend.delete('key-auth.txt');
  });

  it('takes AZURE_STORAGE_CONNECTION_STRING from the environment', async () => {
    const backend = open({ prefix: run }, { AZURE_STORAGE_CONNECTION_STRING: connectionString });
    await backend.put('env-conn.txt', text('by env'));
    assert.equal(decode(await backend.get('env-conn.txt')), 'by env');
    await backend.delete('env-conn.txt');
  });

  it('fails with ConfigError, without secrets, when credentials are missing or do not fit', () => {
    assert.throws(() => open({}), (error: unknown) => error instanceof ConfigError && /no credentials/.test(error.message));
    assert.throws(
      () => open({ connection_string: connectionString.replace(`AccountName=${account}`, 'AccountName=someoneelse') }),
      (error: unknown) => error instanceof ConfigError && /names account someoneelse/.test(error.message) && !error.describe().includes(accountKey),
    );
    assert.throws(
      () => open({ connection_string: `AccountName=${account};AccountKey=${accountKey}` }),
      (error: unknown) => error instanceof ConfigError && !error.describe().includes(accountKey),
    );
  });

  it('says clearly when the container does not exist (fatal, not "not found")', async () => {
    const backend = open({ container: `missing-${run}`, connection_string: connectionString });
    await assert.rejects(backend.put('x', text('x')), (error: unknown) => {
      assert.ok(error instanceof StorageError && error.code === 'STORAGE_FAILED', String(error));
      assert.equal(error.retriable, false);
      assert.match(error.message, /container missing-.* does not exist/);
      return true;
    });
  });

  it('refuses retainUntil instead of ignoring it (retention is the container policy)', async () => {
    const backend = open({ prefix: run, connection_string: connectionString });
    await assert.rejects(backend.put('kept.txt', text('x'), { retainUntil: new Date(Date.now() + 60_000) }), /retention policy on container/);
    assert.deepEqual(await listKeys(backend, 'kept'), []);
  });

  it('reads nothing past the end and nothing for length 0, but still reports missing keys', async () => {
    const backend = open({ prefix: run, connection_string: connectionString });
    await backend.put('short.txt', text('abc'));
    assert.equal((await backend.getRange('short.txt', 3, 5)).byteLength, 0);
    assert.equal((await backend.getRange('short.txt', 10, 5)).byteLength, 0);
    assert.equal((await backend.getRange('short.txt', 1, 0)).byteLength, 0);
    await assert.rejects(backend.getRange('absent.txt', 0, 0), (error: unknown) => (error as StorageError).code === 'NOT_FOUND');
    await backend.delete('short.txt');
  });
});
