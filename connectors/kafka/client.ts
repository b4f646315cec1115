// Before kafkajs loads: its record decoder is replaced (see record-decoder.ts).
import './record-decoder.js';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import kafkajs from 'kafkajs';
import type { Kafka, LogEntry, Producer, RetryOptions, SASLOptions } from 'kafkajs';
import {
  ConfigError,
  EarthMemoryError,
  SourceError,
  StorageError,
  type ErrorContext,
  type EarthMemoryErrorOptions,
} from '../../src/core/errors.js';
import { redact } from '../../src/core/redact.js';
import { registerCompressionCodecs } from './codecs.js';
import type { KafkaConnectionConfig } from './config.js';

// kafkajs is CommonJS and spreads its error classes into `module.exports`, which Node's ESM
// loader cannot see as named exports: import the default and destructure.
const { Kafka: KafkaClient, Partitioners, logLevel } = kafkajs;

export type KafkaLogLevel = 'error' | 'warn' | 'info' | 'debug';
/** Receives kafkajs's log, one line per entry. */
export type KafkaLog = (line: string, level: KafkaLogLevel) => void;

const logToStderr: KafkaLog = (line) => {
  process.stderr.write(`${line}\n`);
};

/**
 * kafkajs's own defaults (~9 s from the first failure to giving up), made explicit because the
 * idempotent producer below reuses them instead of retrying forever.
 */
export const kafkaRetry: RetryOptions = { retries: 5, initialRetryTime: 300, maxRetryTime: 30_000, multiplier: 2, factor: 0.2 };

/**
 * A kafkajs client for `config`. kafkajs logs at WARN (raise it with `KAFKAJS_LOG_LEVEL=debug`)
 * through `log`, one line per entry, with SASL credentials masked. Registers the LZ4 and ZSTD
 * codecs, so no consumer made from it stalls on a compressed batch it cannot decode.
 * Connect through `connectChecked`, so a broker certificate that does not verify fails at once.
 */
export function createKafka(config: KafkaConnectionConfig, log: KafkaLog = logToStderr, retry: RetryOptions = kafkaRetry): Kafka {
  registerCompressionCodecs();
  const secrets = config.sasl ? [config.sasl.password] : [];
  return new KafkaClient({
    brokers: config.brokers,
    clientId: config.client_id,
    ssl: tlsOptions(config.ssl),
    sasl: saslOptions(config.sasl),
    connectionTimeout: config.connection_timeout,
    requestTimeout: config.request_timeout,
    retry,
    logLevel: logLevel.WARN,
    logCreator: (enabled) => (entry) => {
      const level = isRoutine(entry) ? logLevel.DEBUG : entry.level;
      if (level <= enabled) log(logLine(entry, secrets), levelName(level));
    },
  });
}

/** Logged by kafkajs for every idempotent producer with bounded retries: our deliberate choice (below). */
const IDEMPOTENT_RETRY_WARNING = 'Limiting retries for the idempotent producer may invalidate EoS guarantees';

/**
 * Entries shown only at debug level: kafkajs logs every error response at ERROR (a topic being
 * auto-created answers UNKNOWN_TOPIC_OR_PARTITION a few times), yet the same error also reaches
 * the caller, which retries it or reports it as a typed error.
 */
function isRoutine(entry: LogEntry): boolean {
  return (
    (entry.namespace === 'Connection' && entry.log.message.startsWith('Response ')) ||
    entry.log.message === IDEMPOTENT_RETRY_WARNING
  );
}

/**
 * An idempotent producer (`acks: -1` on every send is the caller's part) with Java's murmur2 key
 * placement. Its retries are bounded (kafkajs would retry an idempotent producer forever), so a
 * send to an unreachable cluster fails and the caller's own retry policy decides; a send that
 * gave up may have been written, which our at-least-once contract accepts.
 */
export function createIdempotentProducer(kafka: Kafka, retry: RetryOptions = kafkaRetry): Producer {
  return kafka.producer({
    idempotent: true,
    retry,
    // Named explicitly: kafkajs otherwise warns that its v2 default changed.
    createPartitioner: Partitioners.DefaultPartitioner,
  });
}

/** A transactional producer (idempotent, one request in flight, as transactions require). */
export function createTransactionalProducer(kafka: Kafka, transactionalId: string, retry: RetryOptions = kafkaRetry): Producer {
  return kafka.producer({
    transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    retry,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
}

function tlsOptions(ssl: KafkaConnectionConfig['ssl']): ConnectionOptions | boolean | undefined {
  if (ssl === undefined || typeof ssl === 'boolean') return ssl;
  const read = (file: string | undefined, key: string) => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file);
    } catch (cause) {
      throw new ConfigError(`cannot read the Kafka TLS ${key}: ${file}`, [], { cause, context: { connector: 'kafka', file } });
    }
  };
  return {
    ca: read(ssl.ca_file, 'ca_file'),
    cert: read(ssl.cert_file, 'cert_file'),
    key: read(ssl.key_file, 'key_file'),
    rejectUnauthorized: ssl.reject_unauthorized,
  };
}

function saslOptions(sasl: KafkaConnectionConfig['sasl']): SASLOptions | undefined {
  if (sasl === undefined) return undefined;
  const { username, password } = sasl;
  switch (sasl.mechanism) {
    case 'plain':
      return { mechanism: 'plain', username, password };
    case 'scram-sha-256':
      return { mechanism: 'scram-sha-256', username, password };
    case 'scram-sha-512':
      return { mechanism: 'scram-sha-512', username, password };
  }
}

function levelName(level: number): KafkaLogLevel {
  if (level <= logLevel.ERROR) return 'error';
  if (level <= logLevel.WARN) return 'warn';
  if (level <= logLevel.INFO) return 'info';
  return 'debug';
}

/** Extra fields never printed: stacks break the one-line rule, credentials must not leak. */
const HIDDEN_FIELDS = /^(timestamp|logger|message|stack)$|pass|secret|token|sasl|credential/i;

/** `kafkajs WARN [Producer] message key=value …` on one line, secrets masked. */
function logLine(entry: LogEntry, secrets: string[]): string {
  const fields = Object.entries(entry.log)
    .filter(([key, value]) => !HIDDEN_FIELDS.test(key) && value !== undefined)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  const namespace = entry.namespace ? ` [${entry.namespace}]` : '';
  let line = `kafkajs ${entry.label}${namespace} ${entry.log.message}${fields.length ? ` ${fields.join(' ')}` : ''}`;
  // This client's password even if it is too short for redact's value masks.
  for (const secret of secrets) line = line.split(secret).join('***');
  return redact(line.replace(/\s*\n\s*/g, ' '));
}

/**
 * Node's codes for a broker certificate that does not verify: no retry sees another certificate,
 * and kafkajs would retry them as connection errors (minutes, with a source's retry budget).
 */
const TLS_CERTIFICATE_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function certificateAdvice(code: string): string {
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || code === 'HOSTNAME_MISMATCH') return 'the certificate does not name this host: connect with a name it lists';
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') return 'the certificate is outside its validity period';
  return 'the certificate is not signed by a CA in ssl.ca_file (or, without ca_file, by a CA the system trusts)';
}

/** The broker's TLS certificate did not verify. Never retriable: the same certificate comes back. */
/**
 * Stores offsets for a group with no running member before it starts (a replay's start, a
 * `start` timestamp): what kafkajs's `admin.setOffsets` does, a consumer of the group seeking
 * while paused and stopping at its first fetch, but with a short fetch wait. A paused kafkajs
 * consumer sleeps its `maxWaitTimeInMs` before that fetch, and the admin's consumer keeps the
 * 5 s default: every replay started 5 s late.
 */
export async function setGroupOffsets(kafka: Kafka, groupId: string, topic: string, partitions: { partition: number; offset: string }[]): Promise<void> {
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 50, allowAutoTopicCreation: false });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const { state } = await consumer.describeGroup();
    // Offsets of a group with live members are theirs to commit.
    if (state !== 'Empty' && state !== 'Dead') {
      throw new SourceError(`consumer group ${groupId} has running members (state ${state}): stop them before setting its offsets`, { context: { connector: 'kafka', stage: 'source' } });
    }
    await new Promise<void>((resolve, reject) => {
      consumer.on(consumer.events.FETCH, () => void consumer.stop().then(resolve, reject));
      consumer.run({ eachBatchAutoResolve: false, eachBatch: async () => undefined }).catch(reject);
      consumer.pause([{ topic }]);
      for (const p of partitions) consumer.seek({ topic, ...p });
    });
  } finally {
    await consumer.disconnect();
  }
}

export class KafkaTlsError extends Error {
  override readonly name = 'KafkaTlsError';
  readonly retriable = false;
  constructor(
    readonly broker: string,
    readonly code: string,
    reason: string,
  ) {
    super(`TLS handshake with Kafka broker ${broker} failed: ${reason} (${code}); ${certificateAdvice(code)}`);
  }
}

/** Whether `error` or its cause chain is a broker certificate that did not verify. */
export function tlsCertificateFailure(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 10; depth++) {
    if (current instanceof KafkaTlsError) return true;
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && TLS_CERTIFICATE_CODES.has(code)) return true;
    if (current.name === 'KafkaJSAggregateError') return ((current as { errors?: unknown[] }).errors ?? []).some(tlsCertificateFailure);
    current = current.cause;
  }
  return false;
}

function hostAndPort(broker: string): { host: string; port: number } {
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(broker);
  if (bracketed) return { host: bracketed[1]!, port: Number(bracketed[2]) };
  const colon = broker.lastIndexOf(':');
  return { host: broker.slice(0, colon), port: Number(broker.slice(colon + 1)) };
}

/**
 * One TLS handshake with each seed broker, the way kafkajs makes it (same options, SNI only for
 * names): a certificate that does not verify throws KafkaTlsError now. A broker that cannot be
 * reached is left to kafkajs's retries (it may be restarting).
 */
export async function checkTls(config: KafkaConnectionConfig): Promise<void> {
  const ssl = tlsOptions(config.ssl);
  if (ssl === undefined || ssl === false) return;
  const options: ConnectionOptions = ssl === true ? {} : ssl;
  const failures = await Promise.all(
    config.brokers.map(
      (broker) =>
        new Promise<KafkaTlsError | undefined>((resolve) => {
          const { host, port } = hostAndPort(broker);
          const socket = tlsConnect({ host, port, ...(isIP(host) ? {} : { servername: host }), ...options }, () => {
            socket.destroy();
            resolve(undefined);
          });
          socket.setTimeout(config.connection_timeout, () => {
            socket.destroy();
            resolve(undefined);
          });
          // `on`, not `once`: a second error event without a listener would crash the process.
          socket.on('error', (error: Error & { code?: string }) => {
            socket.destroy();
            const code = error.code ?? '';
            resolve(TLS_CERTIFICATE_CODES.has(code) ? new KafkaTlsError(broker, code, error.message) : undefined);
          });
        }),
    ),
  );
  const failure = failures.find((f) => f !== undefined);
  if (failure) throw failure;
}

/** `client.connect()` after `checkTls`: for every kafkajs admin, consumer and producer we connect. */
export async function connectChecked(config: KafkaConnectionConfig, client: { connect(): Promise<void> }): Promise<void> {
  await checkTls(config);
  await client.connect();
}

/** Errors that say the cluster (or the way to it) is unavailable for now: a later attempt may work. */
const TRANSIENT_ERRORS = new Set([
  'KafkaJSNumberOfRetriesExceeded', // kafkajs retried a transient error until its budget ran out
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSTopicMetadataNotLoaded',
  'KafkaJSGroupCoordinatorNotFound',
  'KafkaJSLockTimeout',
]);
/** Errors no retry fixes: credentials, a certificate, protocol support, a codec. */
const PERMANENT_ERRORS = new Set([
  'KafkaJSSASLAuthenticationError',
  'KafkaTlsError',
  'KafkaJSNotImplemented',
  'KafkaJSServerDoesNotSupportApiKey',
  'KafkaJSUnsupportedMagicByteInMessageSet',
  'KafkaJSInvariantViolation',
]);
const TRANSIENT_SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

/**
 * Whether retrying may help, judged on the whole cause chain: kafkajs wraps a connection failure
 * it gave up on in a `KafkaJSNonRetriableError` (its own retries are spent), but for us the
 * broker may be back later. Protocol errors carry Kafka's own retriable flag.
 */
export function kafkaErrorIsRetriable(error: unknown): boolean {
  // A certificate kafkajs gave up on sits under KafkaJSNumberOfRetriesExceeded, itself transient.
  if (tlsCertificateFailure(error)) return false;
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 10; depth++) {
    if (current instanceof EarthMemoryError) return current.retriable;
    if (PERMANENT_ERRORS.has(current.name)) return false;
    if (TRANSIENT_ERRORS.has(current.name)) return true;
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && TRANSIENT_SOCKET_CODES.has(code)) return true;
    if (current.name === 'KafkaJSProtocolError') return (current as { retriable?: unknown }).retriable === true;
    // Any other kafkajs error that says so itself ("Closed connection", a stale producer).
    if (current.name.startsWith('KafkaJS') && (current as { retriable?: unknown }).retriable === true) return true;
    if (current.name === 'KafkaJSAggregateError') {
      const errors = (current as { errors?: unknown[] }).errors ?? [];
      return errors.length > 0 && errors.every(kafkaErrorIsRetriable);
    }
    current = current.cause;
  }
  return (error as { retriable?: unknown } | null)?.retriable === true;
}

/**
 * Errors that say the broker no longer knows this producer's id, sequence or epoch (it lost the
 * producer state, e.g. across a restart, or a newer producer of the transactional id fenced it).
 * Fatal for that producer, but a new producer recovers; kafkajs marks them not retriable, because
 * it keeps the producer. Kafka's UNKNOWN_SERVER_ERROR (code -1, kafkajs's type `UNKNOWN`) is among
 * them: Kafka 4 answers it to an old client's produce when a fence lands while the partition
 * verifies the transaction.
 */
const PRODUCER_STATE_ERRORS = new Set(['OUT_OF_ORDER_SEQUENCE_NUMBER', 'UNKNOWN_PRODUCER_ID', 'INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED', 'INVALID_PRODUCER_ID_MAPPING', 'UNKNOWN']);

/** Whether `error` (or its cause chain) says the broker lost the producer's state. */
export function producerStateLost(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 10; depth++) {
    if (PRODUCER_STATE_ERRORS.has(String((current as { type?: unknown }).type))) return true;
    current = current.cause;
  }
  return false;
}

function kafkaErrorOptions(error: unknown, context: ErrorContext, retriable = kafkaErrorIsRetriable(error)): EarthMemoryErrorOptions {
  return { cause: error, retriable, context: { connector: 'kafka', ...context } };
}

/** A failed Kafka read as a `SourceError`; `doing` says what failed ("fetching from topic t"). */
export function toSourceError(error: unknown, context: ErrorContext, doing = 'reading from Kafka'): SourceError {
  if (error instanceof SourceError) return error;
  return new SourceError(`${doing} failed`, kafkaErrorOptions(error, context));
}

/**
 * A failed Kafka write (dead letter, `earthmem produce`) as a `StorageError`. `newProducer`: the
 * caller's next attempt uses a new producer, so a lost producer state is retriable too.
 */
export function toStorageError(error: unknown, context: ErrorContext, doing = 'writing to Kafka', newProducer = false): StorageError {
  if (error instanceof StorageError) return error;
  const retriable = kafkaErrorIsRetriable(error) || (newProducer && producerStateLost(error));
  return new StorageError(`${doing} failed`, kafkaErrorOptions(error, context, retriable));
}
