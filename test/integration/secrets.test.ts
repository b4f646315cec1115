/**
 * No secret reaches what earthmem prints: failing and succeeding commands against the real
 * servers of `scripts/services` (a wrong password, a wrong database, an unreachable server,
 * `catalog ls`, `status`, `run`, `gc`), stdout and stderr searched for every test secret the
 * services hand out (PGPASSWORD, AZURE_STORAGE_KEY, INFLUXDB_PASSWORD, AWS_SECRET_ACCESS_KEY …),
 * the wrong passwords the test itself tries, and the encryption key.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DeleteObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { stringify } from 'yaml';
import { writeSample } from '../../src/records/sample.js';
import { tempDir } from '../support/fixtures.js';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run eval "$(scripts/services env --export)" first (or npm test)`);
  return value;
}

const dir = tempDir('secrets');
const input = join(dir, 'in.ndjson');
const run = `s${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
/** Wrong credentials the test tries: shown nowhere either. */
const WRONG = {
  pg: 'wrong-pg-password-5e2a',
  s3: 'wrong-s3-secret-key-90c4',
  azure: Buffer.from('wrong-azure-account-key-3f1d-not-base64-of-the-real-one').toString('base64'),
  mongo: 'wrong-mongo-password-c7d2',
  redis: 'wrong-redis-password-1b8e',
  influx: 'wrong-influx-password-66fa',
};
const ENCRYPTION_KEY = randomBytes(32).toString('base64');

/** The services' secrets as `scripts/services env` hands them out. */
function serviceSecrets(): { name: string; value: string }[] {
  const names = ['AZURE_STORAGE_KEY', 'INFLUXDB_PASSWORD', 'INFLUXDB_TOKEN', 'MONGODB_PASSWORD', 'REDIS_PASSWORD', 'AWS_SECRET_ACCESS_KEY', 'KAFKA_SCRAM_PASSWORD'];
  return names.filter((n) => process.env[n]).map((name) => ({ name, value: process.env[name]! }));
}

/** Fails if `output` shows a secret: a test secret, a wrong password tried, the key, or a password in a URL or parameter. */
function assertNoSecrets(what: string, output: string): void {
  const secrets = [
    ...serviceSecrets(),
    ...Object.entries(WRONG).map(([name, value]) => ({ name: `wrong ${name} password`, value })),
    { name: 'the encryption key', value: ENCRYPTION_KEY },
    { name: 'the encryption key (hex)', value: Buffer.from(ENCRYPTION_KEY, 'base64').toString('hex') },
  ];
  for (const { name, value } of secrets) assert.ok(!output.includes(value), `${what} shows ${name}:\n${output}`);
  // PGPASSWORD is "earthmem", like the user and the database: look for it where a password stands.
  const pg = required('PGPASSWORD');
  for (const shape of [`:${pg}@`, `password=${pg}`]) assert.ok(!output.includes(shape), `${what} shows the PostgreSQL password (${shape}):\n${output}`);
  assert.doesNotMatch(output, /AccountKey=(?!\*\*\*)/i, `${what} shows an Azure account key`);
  assert.doesNotMatch(output, /:\/\/[^\s/@:]*:(?!\*\*\*@)[^\s/@]+@/, `${what} shows a URL with a password`);
}

interface Cli {
  code: number | null;
  output: string;
}

function earthmem(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Cli> {
  const child = spawn(process.execPath, ['bin/earthmem.js', ...args], { env: { ...process.env, EARTHMEM_ENCRYPTION_KEY: ENCRYPTION_KEY, ...env } });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    }),
  );
}

/** A pipeline file: the small sample to one hot tier on `backend`, with `catalog`; encrypted unless the backend stores rows. */
function pipeline(name: string, backend: Record<string, unknown>, catalog: Record<string, unknown> = { type: 'sqlite', path: join(dir, `${name}.sqlite`) }): string {
  const rows = ['postgresql', 'mongodb', 'influxdb'].includes(String(backend.type));
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    stringify({
      name,
      source: { type: 'file', path: input, format: 'ndjson' },
      classify: { rules: [{ match: { variable: 'temperature' }, memory_type: 'TemperatureMemory' }], default: 'dead_letter' },
      routing: { default: 'hot' },
      storage: { ...(rows ? {} : { encryption_enabled: true }), tier_configs: { hot: { primary_backend: backend } } },
      catalog,
      dead_letter: { type: 'local_file', path: join(dir, `${name}.dead-letters.ndjson`) },
    }),
  );
  return file;
}

/** A PostgreSQL URL of the services' server with another password or database. */
function pgUrl(change: { password?: string; database?: string; port?: number }): string {
  const url = new URL(required('DATABASE_URL'));
  if (change.password !== undefined) url.password = change.password;
  if (change.database !== undefined) url.pathname = `/${change.database}`;
  if (change.port !== undefined) url.port = String(change.port);
  return url.toString();
}

/** Runs `args`, checks the exit code and what the output says, and that it shows no secret. */
async function expect(args: string[], code: number, says: RegExp, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const { code: actual, output } = await earthmem(args, env);
  assert.equal(actual, code, `earthmem ${args.join(' ')} exited ${actual}:\n${output}`);
  assert.match(output, says);
  assertNoSecrets(`earthmem ${args.join(' ')}`, output);
  // With stacks and causes printed whole (EARTHMEM_DEBUG), nothing shows either.
  if (code !== 0) assertNoSecrets(`EARTHMEM_DEBUG=1 earthmem ${args.join(' ')}`, (await earthmem(args, { ...env, EARTHMEM_DEBUG: '1' })).output);
  return output;
}

describe('secrets never appear in output (real servers of scripts/services)', () => {
  before(async () => {
    await writeSample(input, { points: 30, features: 0, badCopies: 0, seed: 3 });
  });

  // What the succeeding runs left on the shared servers: the catalog schema, the S3 objects.
  after(async () => {
    const client = new pg.Client({ connectionString: required('DATABASE_URL') });
    await client.connect();
    try {
      await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(`t_${run}`)} CASCADE`);
    } finally {
      await client.end();
    }
    const s3 = new S3Client({
      region: required('AWS_REGION'), endpoint: required('S3_ENDPOINT'), forcePathStyle: true,
      credentials: { accessKeyId: required('AWS_ACCESS_KEY_ID'), secretAccessKey: required('AWS_SECRET_ACCESS_KEY') },
    });
    const bucket = required('S3_BUCKET_WARM');
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${run}/` }));
    for (const o of listed.Contents ?? []) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key! }));
    s3.destroy();
  });

  describe('the PostgreSQL catalog', () => {
    const catalog = (connection_string: string) => ({ type: 'postgresql', connection_string, schema: `t_${run}` });
    const local = { type: 'local_file', base_path: join(dir, 'pg-local') };

    it('a wrong password: catalog ls and status fail, saying so', async () => {
      const file = pipeline('pg-wrong-password', local, catalog(pgUrl({ password: WRONG.pg })));
      await expect(['catalog', 'ls', file], 1, /password authentication failed for user "earthmem"/);
      await expect(['status', file], 1, /password authentication failed/);
    });

    it('the right password and a wrong database: the database is named, the password is not', async () => {
      const file = pipeline('pg-wrong-database', local, catalog(pgUrl({ database: `no_such_db_${run}` })));
      await expect(['catalog', 'ls', file], 1, new RegExp(`database "no_such_db_${run}" does not exist`));
    });

    it('an unreachable server', async () => {
      const file = pipeline('pg-unreachable', local, catalog(pgUrl({ port: 1, password: WRONG.pg })));
      await expect(['catalog', 'ls', file], 1, /cannot open PostgreSQL catalog .*ECONNREFUSED 127\.0\.0\.1:1 \(retriable\)/);
    });

    it('succeeding: run, catalog ls (--json too) and status show where objects are, without the password', async () => {
      const file = pipeline('pg-ok', local, catalog(required('DATABASE_URL')));
      await expect(['run', file], 0, /written:\s+30/);
      await expect(['catalog', 'ls', file], 0, /hot +TemperatureMemory .*\n(.*\n)*\d+ objects\n$/);
      await expect(['catalog', 'ls', file, '--json'], 0, /"uri":"[^"]+pg-local[^"]*","tier":"hot"/);
      await expect(['status', file], 0, /^hot +\d+ +30 /m);
      await expect(['status', file, '--json'], 0, /"hot":\{"objects":\d+,"rows":30,/);
    });
  });

  describe('storage backends with wrong credentials or away', () => {
    it('S3: a wrong secret key', async () => {
      const file = pipeline('s3', {
        type: 's3', bucket: required('S3_BUCKET_WARM'), region: required('AWS_REGION'), endpoint: required('S3_ENDPOINT'), prefix: `${run}/`,
        credentials: { aws_access_key_id: required('AWS_ACCESS_KEY_ID'), aws_secret_access_key: WRONG.s3 },
      });
      await expect(['run', file], 1, /s3 open: access denied \(HTTP 403\); check the credentials/);
    });

    it('S3: the right key, the run succeeds and gc lists nothing', async () => {
      const file = pipeline('s3-ok', {
        type: 's3', bucket: required('S3_BUCKET_WARM'), region: required('AWS_REGION'), endpoint: required('S3_ENDPOINT'), prefix: `${run}/`,
        credentials: { aws_access_key_id: '${AWS_ACCESS_KEY_ID}', aws_secret_access_key: '${AWS_SECRET_ACCESS_KEY}' },
      });
      await expect(['run', file], 0, /written:\s+30/);
      await expect(['gc', file], 0, /0 objects no catalog row points at/);
    });

    it('Azure Blob: a connection string with a wrong account key', async () => {
      const connection = required('AZURE_CONNECTION_STRING').replace(/AccountKey=[^;]+/, `AccountKey=${WRONG.azure}`);
      const file = pipeline('azure', { type: 'azure_blob', account: required('AZURE_ACCOUNT'), container: required('AZURE_CONTAINER_GLACIER'), prefix: run, connection_string: connection });
      await expect(['run', file], 1, /azure_blob put: access denied \(HTTP 403\)/);
    });

    it('MongoDB: a wrong password', async () => {
      const url = new URL(required('MONGODB_URL'));
      url.password = WRONG.mongo;
      await expect(['run', pipeline('mongo', { type: 'mongodb', connection_string: url.toString(), collection_prefix: `${run}_` })], 1, /mongodb .*access denied.*Authentication failed/);
    });

    it('Redis: a wrong password in the URL (ioredis keeps it in the failed AUTH command), and an unreachable server', async () => {
      const url = new URL(required('REDIS_URL'));
      url.password = WRONG.redis;
      await expect(['run', pipeline('redis', { type: 'redis', url: url.toString(), key_prefix: `${run}:` })], 1, /redis put: access denied.*WRONGPASS/);
      url.port = '1';
      url.password = required('REDIS_PASSWORD');
      // Retried first (for the 2 s its retry policy allows): the retry lines describe the error too.
      await expect(
        ['run', pipeline('redis-away', { type: 'redis', url: url.toString(), key_prefix: `${run}:`, retry: { max_elapsed: '2s' } })],
        1,
        /redis tier hot: redis put failed \(ECONNREFUSED\).*: retrying[^]*redis tier hot: gave up after 2 s[^]*\(retriable\)/,
      );
    });

    it('InfluxDB: a wrong password', async () => {
      const file = pipeline('influx', {
        type: 'influxdb', url: required('INFLUXDB_URL'), username: required('INFLUXDB_USERNAME'), password: WRONG.influx, bucket: required('INFLUXDB_BUCKET'),
        measurement_prefix: `${run}_`,
      });
      await expect(['run', file], 1, /influxdb writeRecords: access denied \(HTTP 401\)/);
    });

    it('a PostgreSQL record tier: a wrong password', async () => {
      const file = pipeline('pg-tier', { type: 'postgresql', connection_string: pgUrl({ password: WRONG.pg }), schema: `r_${run}` });
      await expect(['run', file], 1, /postgresql open: access denied; check the credentials \[server=127\.0\.0\.1:\d+\/\w+ .*password authentication failed/);
    });
  });
});
