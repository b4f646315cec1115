import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ConfigError, describeError, StorageError } from '../../../src/core/errors.js';
import { redact, redactUrl, registerConfigSecrets, registerSecret } from '../../../src/core/redact.js';

/** Secrets as generated passwords look: long enough to be masked by value, no separators. */
const secret = fc.stringMatching(/^[A-Za-z0-9_~!$*+-]{8,40}$/);

describe('redact', () => {
  it('masks the password of any URL user info, keeps the rest', () => {
    assert.equal(redact('connect postgresql://earthmem:hunter2x@127.0.0.1:15432/db failed'), 'connect postgresql://earthmem:***@127.0.0.1:15432/db failed');
    assert.equal(redact('redis://:p4ssw0rd@127.0.0.1:16379/0'), 'redis://:***@127.0.0.1:16379/0');
    assert.equal(redact('mongodb://u:pw@h1:1,h2:2/db?authSource=admin'), 'mongodb://u:***@h1:1,h2:2/db?authSource=admin');
    // No user info: nothing to mask, ports and paths stay.
    assert.equal(redact('kafka://127.0.0.1:19092/dlq and http://127.0.0.1:9/x'), 'kafka://127.0.0.1:19092/dlq and http://127.0.0.1:9/x');
  });

  it('masks secret parameters of query and connection strings, JSON fields, headers and private keys', () => {
    assert.equal(
      redact('DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=Eby8vdM02x==;BlobEndpoint=http://127.0.0.1:19100/dev;'),
      'DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=***;BlobEndpoint=http://127.0.0.1:19100/dev;',
    );
    assert.equal(redact('https://a.blob.core.windows.net/c?sv=2024&sig=abc%2Bdef&se=x'), 'https://a.blob.core.windows.net/c?sv=2024&sig=***&se=x');
    assert.equal(redact('GET /q?u=earthmem&p=s3cr3t-value&db=x'), 'GET /q?u=earthmem&p=***&db=x');
    assert.equal(redact('host=db user=me password=top-secret sslmode=require'), 'host=db user=me password=*** sslmode=require');
    assert.equal(redact('X-Amz-Signature=deadbeef&X-Amz-Security-Token=tok'), 'X-Amz-Signature=***&X-Amz-Security-Token=***');
    assert.equal(redact('{"user":"me","password":"a\\"b","private_key":"-----BEGIN"}'), '{"user":"me","password":"***","private_key":"***"}');
    assert.equal(redact('authorization: Token earthmem:pw123456'), 'authorization: Token ***');
    assert.equal(redact("headers: { Authorization: 'Basic ZWFydGg6bWVt' }"), "headers: { Authorization: 'Basic ***' }");
    assert.equal(redact('key -----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY----- end'), 'key -----BEGIN PRIVATE KEY----- *** end');
  });

  it('property: a registered secret never survives, whatever text it is embedded in', () => {
    fc.assert(
      fc.property(secret, fc.string(), fc.string(), (value, before, after) => {
        registerSecret(value);
        const text = redact(`${before}${value}${after} ${encodeURIComponent(value)}`);
        return !text.includes(value) && !text.includes(encodeURIComponent(value));
      }),
      { numRuns: 200 },
    );
  });

  it('property: a URL password is masked without being registered', () => {
    fc.assert(
      fc.property(secret, fc.stringMatching(/^[a-z]{1,12}$/), (password, user) => {
        const url = `postgresql://${user}:${encodeURIComponent(password)}@127.0.0.1:5432/db`;
        return !redact(`cannot connect to ${url}: refused`).includes(encodeURIComponent(password));
      }),
      { numRuns: 200 },
    );
  });

  it("registers a configuration's secrets, but not a password equal to its user name", () => {
    registerConfigSecrets({
      source: { sasl: { mechanism: 'scram-sha-512', username: 'alice', password: 'sasl-secret-1' } },
      catalog: { connection_string: 'postgresql://bob:pg-secret-2@db:5432/x' },
      storage: {
        tier_configs: {
          hot: { primary_backend: { credentials: { aws_access_key_id: 'AKIAPUBLIC', aws_secret_access_key: 's3-secret-3' } } },
          cold: { primary_backend: { connection_string: 'AccountName=a;AccountKey=azure-secret-4;BlobEndpoint=http://h' } },
          warm: { primary_backend: { type: 'influxdb', token: 'carol:influx-secret-5' } },
        },
      },
      dead_letter: { username: 'samesame', password: 'samesame' },
    });
    const text = redact('sasl-secret-1 pg-secret-2 s3-secret-3 azure-secret-4 influx-secret-5 AKIAPUBLIC alice bob carol samesame');
    assert.equal(text, '*** *** *** *** *** AKIAPUBLIC alice bob carol samesame');
    // Where it stands as a password it is masked all the same.
    assert.equal(redact('postgresql://samesame:samesame@h/db'), 'postgresql://samesame:***@h/db');
  });
});

describe('redactUrl', () => {
  it('drops the password and secret parameters, keeps the user and the rest', () => {
    assert.equal(redactUrl('postgresql://earthmem:pw@127.0.0.1:15432/earthmem?sslmode=disable&password=x'), 'postgresql://earthmem@127.0.0.1:15432/earthmem?sslmode=disable');
    assert.equal(redactUrl('http://user:pw@127.0.0.1:9', { keepUser: false }), 'http://127.0.0.1:9/');
    assert.equal(redactUrl('https://acct.blob.core.windows.net/c?sv=1&sig=zzz'), 'https://acct.blob.core.windows.net/c?sv=1');
    assert.equal(redactUrl('/var/run/postgresql db'), '/var/run/postgresql db');
  });
});

describe('error descriptions', () => {
  it('describe and describeError mask what causes quote', () => {
    const cause = new Error('getaddrinfo failed for postgresql://u:cause-secret-9@nohost/db');
    const error = new StorageError('postgresql open failed', { cause, context: { connector: 'postgresql' } });
    assert.equal(error.describe(), 'postgresql open failed [connector=postgresql]: getaddrinfo failed for postgresql://u:***@nohost/db');
    assert.equal(describeError(cause), 'getaddrinfo failed for postgresql://u:***@nohost/db');
    assert.equal(describeError('token=abc123'), 'token=***');
    assert.match(new ConfigError('bad', [], { cause: new Error('password=x1') }).describe(), /password=\*\*\*/);
  });
});
