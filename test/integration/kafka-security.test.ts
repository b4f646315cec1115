/**
 * Kafka over TLS and SASL_SSL (SCRAM-SHA-512 and -256) against the project's own broker, whose
 * SSL and SASL_SSL listeners `scripts/services` sets up with a test CA and a SCRAM user: the
 * pipeline consumes over each, dead-letters over SASL, `earthmem produce` sends over each, and a
 * wrong CA or password fails at once with a typed, non-retriable error that says what is wrong
 * and never shows the password.
 */
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import type { Kafka } from 'kafkajs';
import { z } from 'zod';
import { createKafka } from '../../connectors/kafka/client.js';
import { kafkaConnectionShape, kafkaDeadLetterSchema, type KafkaConnectionConfig } from '../../connectors/kafka/config.js';
import { KafkaDeadLetterSink } from '../../connectors/kafka/dead-letter.js';
import { parseConfigText } from '../../src/config/load.js';
import { SourceError, StorageError } from '../../src/core/errors.js';
import { runPipeline, type RunSummary } from '../../src/pipeline/run.js';
import { pipelineSchema } from '../../src/pipeline/schema.js';
import { writeSample } from '../../src/records/sample.js';
import { tempDir } from '../support/fixtures.js';

/** A setting of `scripts/services env`; missing, the test fails (it never skips). */
function need(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: these tests need the broker's TLS and SASL_SSL listeners (scripts/services up kafka; ` +
        'eval "$(scripts/services env --export)"; a broker started by an older scripts/services needs a restart)',
    );
  }
  return value;
}

const env = () => ({
  tls: need('KAFKA_TLS_BROKERS'),
  sasl: need('KAFKA_SASL_BROKERS'),
  ca: need('KAFKA_CA_FILE'),
  user: need('KAFKA_SCRAM_USER'),
  password: need('KAFKA_SCRAM_PASSWORD'),
});

type Mechanism = 'scram-sha-512' | 'scram-sha-256';
const MECHANISMS: Mechanism[] = ['scram-sha-512', 'scram-sha-256'];
const WRONG_PASSWORD = 'not-the-scram-password-71b3';
const run = `${Date.now()}-${process.pid}`;
const dir = tempDir('kafka-security');

/** A CA that signed nothing the broker shows: verification against it must fail. */
const otherCa = join(dir, 'other-ca.pem');
before(() => {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=not the earth-memory test CA',
    '-keyout', join(dir, 'other-ca.key'), '-out', otherCa], { stdio: 'ignore' });
});

interface Connection {
  brokers: string;
  ca: string;
  sasl?: { mechanism: Mechanism; password: string };
}

const tlsOnly = (ca = env().ca): Connection => ({ brokers: env().tls, ca });
const saslSsl = (mechanism: Mechanism, password = env().password): Connection => ({ brokers: env().sasl, ca: env().ca, sasl: { mechanism, password } });

function connectionYaml(c: Connection, indent: string): string {
  const lines = [`brokers: "${c.brokers}"`, `ssl: { ca_file: "${c.ca}" }`];
  if (c.sasl) lines.push(`sasl: { mechanism: ${c.sasl.mechanism}, username: "${env().user}", password: "${c.sasl.password}" }`);
  return lines.map((l) => `${indent}${l}`).join('\n');
}

/** pipelines/kafka.yaml's shape, on a local tier and a SQLite catalog; the dead letters go over SASL_SSL. */
function pipelineYaml(name: string, source: Connection, deadLetter: Connection = saslSsl('scram-sha-512')): string {
  const data = join(dir, name);
  return `name: ${name}
source:
  type: kafka
${connectionYaml(source, '  ')}
  topics: [obs-${name}-${run}]
  group_id: group-${name}-${run}
  start: earliest
  max_record_bytes: 64KiB
  lag_log_interval: 0
classify:
  rules:
    - match: { variable: [temperature, precipitation, wind_speed, relative_humidity] }
      memory_type: AtmosphereMemory
    - match: { kind: vector }
      memory_type: HazardMemory
  default: dead_letter
routing:
  default: hot
batch:
  max_rows: 100000
  max_age: 1s
storage:
  tier_configs:
    hot:
      primary_backend: { type: local_file, base_path: "${data}/hot" }
catalog:
  type: sqlite
  path: "${data}/catalog.sqlite"
dead_letter:
  type: kafka
${connectionYaml(deadLetter, '  ')}
  topic: dlq-${name}-${run}
`;
}

const topicOf = (name: string) => `obs-${name}-${run}`;
const deadLetterTopicOf = (name: string) => `dlq-${name}-${run}`;

function connectionConfig(c: Connection): KafkaConnectionConfig {
  return z.object(kafkaConnectionShape).parse({
    brokers: c.brokers,
    client_id: 'earthmem-security-test',
    ssl: { ca_file: c.ca },
    ...(c.sasl ? { sasl: { mechanism: c.sasl.mechanism, username: env().user, password: c.sasl.password } } : {}),
  });
}

const quiet = () => undefined;
const kafka = (c: Connection): Kafka => createKafka(connectionConfig(c), quiet);

interface Cli {
  code: number | null;
  output: string;
  ms: number;
}

/** `earthmem ARGS…` with `extraEnv`; stdout and stderr together. */
function earthmem(args: string[], extraEnv: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<Cli> {
  const started = Date.now();
  const child = spawn(process.execPath, ['bin/earthmem.js', ...args], { env: { ...process.env, ...extraEnv } });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output, ms: Date.now() - started });
    }),
  );
}

/** The sample (valid points and features, and one copy of each bad record) and how many of each it holds. */
async function sample(name: string): Promise<{ file: string; valid: number; bad: number }> {
  const file = join(dir, `${name}.ndjson`);
  const { valid } = await writeSample(file, { points: 3_000, features: 40, badCopies: 1, seed: 7 });
  // `earthmem produce` sends non-blank lines only.
  const sent = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim().length > 0).length;
  return { file, valid, bad: sent - valid };
}

function produceArgs(topic: string, file: string, c: Connection): string[] {
  const args = ['produce', '--brokers', c.brokers, '--ca-file', c.ca, '--topic', topic, '--key-field', 'station', '--compression', 'zstd'];
  if (c.sasl) args.push('--sasl', c.sasl.mechanism, '--username', env().user, '--password-env', 'EARTHMEM_TEST_SASL_PASSWORD');
  return [...args, file];
}

/** Runs the pipeline in-process until it has written `valid` records and dead-lettered `bad`, then drains it. */
async function runUntil(yaml: string, valid: number, bad: number): Promise<{ summary: RunSummary; log: string[] }> {
  const config = parseConfigText(yaml, 'kafka-security.yaml', pipelineSchema, {});
  const controller = new AbortController();
  const log: string[] = [];
  const timer = setTimeout(() => controller.abort(), 90_000);
  try {
    const summary = await runPipeline(config, {
      signal: controller.signal,
      progressIntervalMs: 100,
      log: (line) => log.push(line),
      onProgress: (s) => {
        if (s.recordsWritten >= valid && s.deadLettered >= bad) controller.abort();
      },
    });
    return { summary, log };
  } finally {
    clearTimeout(timer);
  }
}

/** Every message of `topic` (read from the beginning over `c`) by its `earthmem.reason` header. */
async function readDeadLetters(c: Connection, topic: string, expected: number): Promise<string[]> {
  const consumer = kafka(c).consumer({ groupId: `read-${topic}` });
  const reasons: string[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read ${reasons.length} of ${expected} dead letters from ${topic} in 60 s`)), 60_000);
      consumer
        .run({
          eachMessage: async ({ message }) => {
            reasons.push(String(message.headers?.['earthmem.reason']));
            if (reasons.length === expected) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return reasons.sort();
}

/** The group's lag on `topic` over `c`: 0 once every offset is committed. */
async function lag(c: Connection, topic: string, groupId: string): Promise<number> {
  const admin = kafka(c).admin();
  await admin.connect();
  try {
    const high = await admin.fetchTopicOffsets(topic);
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const done = new Map(committed!.partitions.map((p) => [p.partition, Math.max(0, Number(p.offset))]));
    return high.reduce((n, p) => n + Number(p.high) - (done.get(p.partition) ?? 0), 0);
  } finally {
    await admin.disconnect();
  }
}

/** Produces the sample to `name`'s topic over `c` with `earthmem produce`, then runs the pipeline over `source`. */
async function produceAndConsume(name: string, producer: Connection, source: Connection): Promise<void> {
  const { file, valid, bad } = await sample(name);
  const produced = await earthmem(produceArgs(topicOf(name), file, producer), { EARTHMEM_TEST_SASL_PASSWORD: producer.sasl?.password });
  assert.equal(produced.code, 0, produced.output);
  assert.match(produced.output, new RegExp(`sent ${valid + bad} records to ${topicOf(name)}`));
  const yaml = pipelineYaml(name, source);
  const { summary, log } = await runUntil(yaml, valid, bad);
  assert.equal(summary.recordsWritten, valid, log.join('\n'));
  assert.equal(summary.deadLettered, bad, log.join('\n'));
  assert.equal(summary.complete, true);
  assert.equal(await lag(source, topicOf(name), `group-${name}-${run}`), 0, 'every offset committed over the secured listener');
  // The dead letters went over SASL_SSL (SCRAM-SHA-512); read back over SCRAM-SHA-256.
  const reasons = await readDeadLetters(saslSsl('scram-sha-256'), deadLetterTopicOf(name), bad);
  assert.equal(reasons.length, bad);
  assert.ok(reasons.includes('malformed_json') && reasons.includes('too_large') && reasons.includes('unclassified'), reasons.join(' '));
  for (const line of log) assert.ok(!line.includes(env().password), line);
  // `earthmem status` reads the group's offsets over the same listener.
  const pipelineFile = join(dir, `${name}.yaml`);
  writeFileSync(pipelineFile, yaml);
  const status = await earthmem(['status', pipelineFile]);
  assert.equal(status.code, 0, status.output);
  assert.match(status.output, new RegExp(`group group-${name}-${run}\n[^]*total lag 0\n`));
  assert.ok(!status.output.includes(env().password), status.output);
}

describe('Kafka over TLS and SASL_SSL (the broker of scripts/services, its test CA and SCRAM user)', () => {
  it('TLS: earthmem produce and the pipeline verify the broker against the test CA; dead letters go over SASL_SSL', async () => {
    await produceAndConsume('tls', tlsOnly(), tlsOnly());
  });

  for (const mechanism of MECHANISMS) {
    it(`SASL_SSL with ${mechanism}: earthmem produce and the pipeline authenticate as the SCRAM user`, async () => {
      await produceAndConsume(mechanism, saslSsl(mechanism), saslSsl(mechanism));
    });
  }

  it('a CA that did not sign the broker certificate fails at once, not retriable, saying so', async () => {
    const started = Date.now();
    const config = parseConfigText(pipelineYaml('wrong-ca', tlsOnly(otherCa)), 'wrong-ca.yaml', pipelineSchema, {});
    const error: unknown = await runPipeline(config).then(
      () => assert.fail('the pipeline ran with an untrusted broker certificate'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof SourceError, String(error));
    assert.equal(error.retriable, false);
    assert.match(error.describe(), new RegExp(`TLS handshake with Kafka broker ${env().tls} failed: .*\\(SELF_SIGNED_CERT_IN_CHAIN\\); the certificate is not signed by a CA in ssl.ca_file`));
    // kafkajs alone would retry the handshake for minutes with the source's retry budget.
    assert.ok(Date.now() - started < 10_000, `failed after ${Date.now() - started} ms`);

    // The same through the CLI: exit 1 at once, the reason on stderr, and produce refuses too.
    const yaml = join(dir, 'wrong-ca.yaml');
    writeFileSync(yaml, pipelineYaml('wrong-ca-cli', tlsOnly(otherCa)));
    const cli = await earthmem(['run', yaml]);
    assert.equal(cli.code, 1, cli.output);
    assert.match(cli.output, /earthmem: reading from Kafka failed \[connector=kafka stage=source\]: TLS handshake with Kafka broker .* failed: self-signed certificate in certificate chain/);
    assert.doesNotMatch(cli.output, /\(retriable\)/);
    const produced = await earthmem(produceArgs(topicOf('wrong-ca'), (await sample('wrong-ca')).file, tlsOnly(otherCa)));
    assert.equal(produced.code, 1, produced.output);
    assert.match(produced.output, /connecting to Kafka at .* failed .*TLS handshake with Kafka broker .* failed/);
  });

  for (const mechanism of MECHANISMS) {
    it(`a wrong ${mechanism} password fails at once, not retriable, and no password is shown`, async () => {
      const started = Date.now();
      const config = parseConfigText(pipelineYaml(`wrong-${mechanism}`, saslSsl(mechanism, WRONG_PASSWORD)), 'wrong.yaml', pipelineSchema, {});
      const error: unknown = await runPipeline(config).then(
        () => assert.fail('the pipeline ran with a wrong password'),
        (e: unknown) => e,
      );
      assert.ok(error instanceof SourceError, String(error));
      assert.equal(error.retriable, false);
      const bits = mechanism.slice('scram-sha-'.length);
      assert.match(error.describe(), new RegExp(`SASL SCRAM SHA${bits} authentication failed: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-${bits}`));
      assert.ok(Date.now() - started < 10_000, `failed after ${Date.now() - started} ms`);

      const yaml = join(dir, `wrong-${mechanism}.yaml`);
      writeFileSync(yaml, pipelineYaml(`wrong-${mechanism}-cli`, saslSsl(mechanism, WRONG_PASSWORD)));
      const cli = await earthmem(['run', yaml], { KAFKAJS_LOG_LEVEL: 'debug' });
      assert.equal(cli.code, 1, cli.output);
      assert.match(cli.output, /earthmem: reading from Kafka failed .*authentication failed/);
      assert.ok(cli.ms < 20_000, `exited after ${cli.ms} ms`);
      const status = await earthmem(['status', yaml]);
      assert.equal(status.code, 1, status.output);
      assert.match(status.output, /earthmem: connecting to Kafka at .* failed .*authentication failed/);
      for (const output of [cli.output, status.output]) {
        for (const secret of [WRONG_PASSWORD, env().password]) assert.ok(!output.includes(secret), `the output shows a password:\n${output}`);
      }
    });
  }

  it('the dead-letter sink refuses a wrong password at its first flush: not retriable, entries kept', async () => {
    const config = kafkaDeadLetterSchema.parse({
      type: 'kafka',
      ...connectionConfig(saslSsl('scram-sha-512', WRONG_PASSWORD)),
      topic: deadLetterTopicOf('wrong-sink'),
    });
    const sink = new KafkaDeadLetterSink(config, { log: quiet });
    sink.write({ payload: Buffer.from('{"not":"valid"'), reason: 'malformed_json', message: 'test', position: { source: 't', partition: 0, offset: 1 } });
    const error: unknown = await sink.flush().then(
      () => assert.fail('the flush succeeded with a wrong password'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof StorageError, String(error));
    assert.equal(error.retriable, false);
    assert.match(error.describe(), /sending 1 dead letters to kafka:\/\/.* failed .*SASL SCRAM SHA512 authentication failed/);
    assert.ok(!error.describe().includes(WRONG_PASSWORD));
    assert.equal(sink.buffered, 1, 'a dead letter is never dropped');
  });
});
