import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../src/core/errors.js';
import { parseConfigText } from '../../../src/config/load.js';
import { interpolate } from '../../../src/config/interpolate.js';
import { pipelineSchema } from '../../../src/pipeline/schema.js';

const demo = readFileSync('pipelines/demo.yaml', 'utf8');

function issuesOf(text: string, env: NodeJS.ProcessEnv = {}) {
  try {
    parseConfigText(text, 'p.yaml', pipelineSchema, env);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.issues;
  }
  assert.fail('expected a ConfigError');
}

describe('pipeline file loading', () => {
  it('loads the demo with defaults filled in', () => {
    const config = parseConfigText(demo, 'demo.yaml', pipelineSchema, {});
    assert.equal(config.source.type, 'file');
    const hot = config.storage.tier_configs.hot?.primary_backend;
    assert.equal(hot?.type === 'local_file' && hot.base_path, 'data/demo/hot');
    assert.equal(config.batch.max_age, 30_000);
    assert.equal(config.source.max_record_bytes, 64 * 1024);
  });

  it('batch.encode_workers: the CPUs less one by default (1 to 4), 0 to encode on the main thread', () => {
    const workers = (text: string) => parseConfigText(text, 'p.yaml', pipelineSchema, {}).batch.encode_workers;
    assert.equal(workers(demo), Math.min(4, Math.max(1, availableParallelism() - 1)));
    assert.equal(workers(demo.replace('max_rows: 50000', 'max_rows: 50000\n  encode_workers: 0')), 0);
    assert.equal(workers(demo.replace('max_rows: 50000', 'max_rows: 50000\n  encode_workers: 3')), 3);
    const issues = issuesOf(demo.replace('max_rows: 50000', 'max_rows: 50000\n  encode_workers: -1'));
    assert.deepEqual(issues.map((i) => i.path), ['batch.encode_workers']);
  });

  it('batch.max_open_bytes: half the in-flight budget by default, and always below it', () => {
    const batch = (extra: string) => parseConfigText(demo.replace('max_rows: 50000', `max_rows: 50000\n${extra}`), 'p.yaml', pipelineSchema, {}).batch;
    assert.equal(batch('').max_open_bytes, 32 * 1024 * 1024);
    assert.equal(batch('  max_in_flight_bytes: 16MiB').max_open_bytes, 8 * 1024 * 1024);
    assert.equal(batch('  max_in_flight_bytes: 16MiB\n  max_open_bytes: 4MiB').max_open_bytes, 4 * 1024 * 1024);
    // Open batches holding the whole budget never flush: a file replay would wait forever.
    const issues = issuesOf(demo.replace('max_rows: 50000', 'max_rows: 50000\n  max_in_flight_bytes: 16MiB\n  max_open_bytes: 16MiB'));
    assert.deepEqual(issues.map((i) => i.path), ['batch.max_open_bytes']);
    assert.match(issues[0]!.message, /must be below max_in_flight_bytes/);
  });

  it('source.max_wait (Kafka): 500 ms by default, a duration, refused otherwise', () => {
    const kafka = readFileSync('pipelines/kafka.yaml', 'utf8');
    const env = { KAFKA_BROKERS: '127.0.0.1:19092', DATABASE_URL: 'postgresql://u@127.0.0.1:15432/db' };
    const wait = (text: string) => {
      const { source } = parseConfigText(text, 'kafka.yaml', pipelineSchema, env);
      assert.equal(source.type, 'kafka');
      return source.type === 'kafka' ? source.max_wait : undefined;
    };
    assert.equal(wait(kafka), 500);
    assert.equal(wait(kafka.replace('  max_record_bytes: 64KiB', '  max_record_bytes: 64KiB\n  max_wait: 2s')), 2000);
    const issues = issuesOf(kafka.replace('  max_record_bytes: 64KiB', '  max_record_bytes: 64KiB\n  max_wait: soon'), env);
    assert.deepEqual(issues.map((i) => i.path), ['source.max_wait']);
  });

  it('interpolates ${VAR} and ${VAR:-default}, typing unquoted values', () => {
    assert.deepEqual(interpolate('a${X}b${Y:-z}', { X: '1' }), { value: 'a1bz', missing: [], substituted: true });
    assert.deepEqual(interpolate('$${X}', {}).value, '${X}');
    const text = demo.replace('max_rows: 50000', 'max_rows: ${ROWS}');
    assert.equal(parseConfigText(text, 'p.yaml', pipelineSchema, { ROWS: '7' }).batch.max_rows, 7);
  });

  it('names the file, key path, line and expectation for unknown keys, wrong types and enums', () => {
    const text = demo
      .replace('max_rows: 50000', 'max_rows: many\n  flush_size: 3')
      .replace('algorithm: lz4', 'algorithm: lzma');
    const issues = issuesOf(text);
    const byPath = new Map(issues.map((i) => [i.path, i]));
    assert.match(byPath.get('batch.max_rows')!.message, /expected number, got string/);
    assert.equal(byPath.get('batch.flush_size')!.message, 'unknown key');
    assert.match(byPath.get('storage.tier_configs.warm.compression.algorithm')!.message, /expected one of "zstd"/);
    assert.ok(issues.every((i) => i.file === 'p.yaml' && typeof i.line === 'number'));
  });

  it('reports a missing environment variable without printing any value', () => {
    const issues = issuesOf(demo.replace('${EARTHMEM_DEMO_INPUT:-data/demo/observations.ndjson}', '${SECRET_PATH}'), { OTHER: 's3cr3t' });
    assert.equal(issues.length, 1);
    assert.equal(issues[0]!.path, 'source.path');
    assert.match(issues[0]!.message, /SECRET_PATH is not set/);
  });

  it('checks that routed tiers exist and templates compile', () => {
    const issues = issuesOf(demo.replace('HazardMemory: cold', 'HazardMemory: glacier').replace('year/month/dataset\n      compression: { algorithm: lz4', 'planet/year\n      compression: { algorithm: lz4'));
    const paths = issues.map((i) => i.path).sort();
    assert.deepEqual(paths, ['routing.memory_types.HazardMemory', 'storage.tier_configs.warm.primary_backend.file_organization']);
  });
});

describe('the spec layouts as pipeline files', () => {
  const secrets = {
    KAFKA_BROKERS: '127.0.0.1:9092',
    DATABASE_URL: 'postgresql://earth:pg-SECRET-1@127.0.0.1:5432/earth',
    REDIS_URL: 'redis://:redis-SECRET-2@127.0.0.1:6379/0',
    S3_BUCKET_WARM: 'warm',
    AWS_REGION: 'us-west-2',
    AWS_ACCESS_KEY_ID: 'AKIA-SECRET-3',
    AWS_SECRET_ACCESS_KEY: 'aws-SECRET-4',
    GCS_BUCKET_COLD: 'cold',
    GCS_PROJECT: 'my-earth-project',
    AZURE_ACCOUNT: 'earthmemoryarchive',
    AZURE_CONTAINER_GLACIER: 'deep-archive',
    AZURE_CONNECTION_STRING: 'DefaultEndpointsProtocol=https;AccountName=earthmemoryarchive;AccountKey=azure-SECRET-5;EndpointSuffix=core.windows.net',
  };

  it('prod.yaml loads with the spec’s tiers; unset optional endpoints are left out', () => {
    const config = parseConfigText(readFileSync('pipelines/prod.yaml', 'utf8'), 'prod.yaml', pipelineSchema, secrets);
    const tiers = config.storage.tier_configs;
    assert.equal(tiers.hot?.primary_backend.type, 'postgresql');
    assert.equal(tiers.warm?.primary_backend.type, 's3');
    assert.equal(tiers.warm?.primary_backend.type === 's3' && tiers.warm.primary_backend.endpoint, undefined);
    assert.equal(tiers.cold?.primary_backend.type === 'gcs' && tiers.cold.primary_backend.credentials_file, undefined);
    assert.equal(tiers.glacier?.primary_backend.type === 'azure_blob' && tiers.glacier.primary_backend.access_tier, 'archive');
    assert.deepEqual(tiers.glacier?.backup_policy, { redundancy: 'geo-redundant', versioning: true, immutable: true, retention_period: 3650 * 86_400_000 });
    assert.equal(tiers.warm?.index_backend?.ttl, 604_800_000);
    assert.equal(config.storage.encryption_enabled, true);
    parseConfigText(readFileSync('pipelines/dev.yaml', 'utf8'), 'dev.yaml', pipelineSchema, {});
  });

  it('never prints a credential in validation errors', () => {
    const issues = issuesOf(readFileSync('pipelines/prod.yaml', 'utf8'), { ...secrets, EARTHMEM_MAX_ROWS: '-5', AWS_REGION: '', EARTHMEM_TIMESCALEDB: 'maybe' });
    const text = issues.map((i) => `${i.path} ${i.message}`).join('\n');
    assert.match(text, /AWS_REGION is not set/);
    assert.match(text, /batch\.max_rows/);
    assert.match(text, /timescaledb_enabled/);
    assert.doesNotMatch(text, /SECRET/);
  });

  it('refuses immutable on a record store and asks for a retention period', () => {
    const yaml = readFileSync('pipelines/dev.yaml', 'utf8').replace(
      '        spatialite_enabled: true\n',
      '        spatialite_enabled: true\n      backup_policy: { immutable: true }\n',
    );
    const messages = issuesOf(yaml).map((i) => `${i.path}: ${i.message}`);
    assert.ok(messages.some((m) => /backup_policy\.retention_period: immutable: true needs a retention_period/.test(m)), messages.join('\n'));
    assert.ok(messages.some((m) => /backup_policy\.immutable: immutable needs an object backend/.test(m)), messages.join('\n'));
  });
});
