/**
 * Which Kafka failures are worth retrying, judged on kafkajs's own error classes: a broker that
 * restarts must look retriable to every caller (source restarts, dead-letter flushes, produce),
 * credentials and protocol mismatches must not.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import kafkajs from 'kafkajs';
import { isRetriable } from '../../src/core/errors.js';
import { kafkaErrorIsRetriable, producerStateLost, toStorageError } from './client.js';

// kafkajs's typings omit some error classes and constructor options its runtime has.
type ErrorClass = new (message: unknown, options?: Record<string, unknown>) => Error;
type AggregateClass = new (message: string, errors: Error[]) => Error;
const errors = kafkajs as unknown as Record<string, ErrorClass>;
const KafkaJSError = errors.KafkaJSError!;
const KafkaJSNonRetriableError = errors.KafkaJSNonRetriableError!;
const KafkaJSConnectionError = errors.KafkaJSConnectionError!;
const KafkaJSConnectionClosedError = errors.KafkaJSConnectionClosedError!;
const KafkaJSNumberOfRetriesExceeded = errors.KafkaJSNumberOfRetriesExceeded!;
const KafkaJSProtocolError = errors.KafkaJSProtocolError!;
const KafkaJSSASLAuthenticationError = errors.KafkaJSSASLAuthenticationError!;
const KafkaJSAggregateError = errors.KafkaJSAggregateError as unknown as AggregateClass;

const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:19092'), { code: 'ECONNREFUSED' });
const protocol = (retriable: boolean, type: string) =>
  new KafkaJSProtocolError({ message: type, type, code: 0, retriable });

describe('kafkaErrorIsRetriable', () => {
  it('treats an unreachable or restarting broker as retriable, however kafkajs wraps it', () => {
    const cases: unknown[] = [
      new KafkaJSConnectionError('Connection error: connect ECONNREFUSED', { broker: '127.0.0.1:19092', code: 'ECONNREFUSED' }),
      new KafkaJSConnectionClosedError('Closed connection', { host: '127.0.0.1', port: 19092 }),
      // kafkajs gave up after its own retries: the broker may still come back.
      new KafkaJSNumberOfRetriesExceeded(new KafkaJSConnectionError('Connection timeout'), { retryCount: 5, retryTime: 3000 }),
      new KafkaJSNonRetriableError('gave up', { cause: refused }),
      // A generic kafkajs error that says it is retriable ("The producer is disconnected").
      new KafkaJSError('The producer is disconnected'),
      protocol(true, 'NOT_LEADER_OR_FOLLOWER'),
      new KafkaJSNonRetriableError('wrapped', { cause: protocol(true, 'NOT_COORDINATOR') }),
      refused,
    ];
    for (const error of cases) assert.equal(kafkaErrorIsRetriable(error), true, String(error));
  });

  it('treats credentials, authorization and protocol refusals as permanent', () => {
    const cases: unknown[] = [
      new KafkaJSSASLAuthenticationError('SASL PLAIN authentication failed'),
      protocol(false, 'TOPIC_AUTHORIZATION_FAILED'),
      new KafkaJSNonRetriableError('Invalid message'),
      new Error('something else'),
      'a string',
      undefined,
    ];
    for (const error of cases) assert.equal(kafkaErrorIsRetriable(error), false, String(error));
  });

  it('an aggregate is retriable only if every error in it is', () => {
    const connection = new KafkaJSConnectionError('Connection error');
    assert.equal(kafkaErrorIsRetriable(new KafkaJSAggregateError('two', [connection, protocol(true, 'REQUEST_TIMED_OUT')])), true);
    assert.equal(kafkaErrorIsRetriable(new KafkaJSAggregateError('two', [connection, protocol(false, 'INVALID_TOPIC_EXCEPTION')])), false);
  });

  it('carries the verdict into the typed error, with the connector named', () => {
    const error = toStorageError(new KafkaJSConnectionClosedError('Closed connection'), { topic: 'dlq' }, 'sending 3 dead letters');
    assert.equal(isRetriable(error), true);
    assert.equal(error.context.connector, 'kafka');
    assert.equal(error.context.topic, 'dlq');
    assert.match(error.message, /sending 3 dead letters failed/);
  });

  it('a lost producer state is retriable only for a caller that starts a new producer', () => {
    // What a restarted broker answers an idempotent producer it no longer knows.
    const lost = new KafkaJSNonRetriableError('gave up', { cause: protocol(false, 'OUT_OF_ORDER_SEQUENCE_NUMBER') });
    assert.equal(producerStateLost(lost), true);
    assert.equal(producerStateLost(protocol(false, 'UNKNOWN_PRODUCER_ID')), true);
    // A fence landing while Kafka 4 verifies a transaction, as an old client hears it: error
    // code -1, made by kafkajs's own error table (its type is UNKNOWN, not Kafka's name).
    const { createErrorFromCode } = createRequire(import.meta.url)('kafkajs/src/protocol/error.js') as { createErrorFromCode(code: number): Error };
    const unknownServerError = createErrorFromCode(-1);
    assert.match(unknownServerError.message, /unexpected error/);
    assert.equal(producerStateLost(unknownServerError), true);
    assert.equal(isRetriable(toStorageError(unknownServerError, {}, 'sending dead letters', true)), true);
    assert.equal(producerStateLost(protocol(false, 'INVALID_PRODUCER_EPOCH')), true);
    assert.equal(producerStateLost(protocol(false, 'TOPIC_AUTHORIZATION_FAILED')), false);
    assert.equal(kafkaErrorIsRetriable(lost), false);
    assert.equal(isRetriable(toStorageError(lost, {}, 'sending dead letters')), false);
    assert.equal(isRetriable(toStorageError(lost, {}, 'sending dead letters', true)), true);
    assert.equal(isRetriable(toStorageError(protocol(false, 'TOPIC_AUTHORIZATION_FAILED'), {}, 'sending', true)), false);
  });
});
