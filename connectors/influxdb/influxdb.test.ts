import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { after, describe, it } from 'node:test';
import { AccessDeniedError, ConfigError, StorageError } from '../../src/core/errors.js';
import type { PointRecord } from '../../src/core/record.js';
import { withRetry } from '../../src/core/retry.js';
import { recordStoreConformance, samplePoints, sampleVectors } from '../../test/conformance/record-store-suite.js';
import { influxdbBackendSchema, type InfluxdbBackendConfig } from './config.js';
import { InfluxDBStorage, regexEscape, stringLiteral, toLines } from './storage.js';

const url = process.env.INFLUXDB_URL;
const username = process.env.INFLUXDB_USERNAME;
const password = process.env.INFLUXDB_PASSWORD;
if (!url || !username || !password) {
  throw new Error(
    'INFLUXDB_URL, INFLUXDB_USERNAME and INFLUXDB_PASSWORD are not set: run `EARTHMEM_TEST_SERVICES=influxdb node scripts/test.mjs connectors/influxdb` (scripts/services up influxdb)',
  );
}

// A fresh database per run: created by the first write (the 1.x path for a missing database), dropped at the end.
const database = `earthmem_test_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
const basic = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
after(async () => {
  const res = await fetch(`${url}/query?${new URLSearchParams({ q: `DROP DATABASE "${database}"` })}`, { method: 'POST', headers: { authorization: basic } });
  assert.equal(res.status, 200);
});

function config(overrides: Partial<Record<keyof InfluxdbBackendConfig, unknown>> = {}): InfluxdbBackendConfig {
  return influxdbBackendSchema.parse({ type: 'influxdb', url, username, password, bucket: database, ...overrides });
}

/** A port where nothing listens (fetch refuses port 1 outright, as a blocked port, without trying). */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

recordStoreConformance({
  name: 'influxdb',
  open: async () => new InfluxDBStorage(config()),
  openUnreachable: async () => new InfluxDBStorage(config({ url: `http://127.0.0.1:${await deadPort()}`, request_timeout: '2s' })),
  secrets: [password],
  vectors: false,
});

function point(overrides: Partial<PointRecord>, offset = 0): PointRecord {
  return { ...samplePoints(1, 'obs', 0, offset)[0]!, ...overrides };
}

describe('influxdb specifics', () => {
  const run = `specifics-${randomBytes(3).toString('hex')}`;
  const store = new InfluxDBStorage(config());
  after(() => store.close());

  it('detects the 1.x API on this server and writes with basic auth', async () => {
    assert.equal(await store.apiInUse(), 'v1');
  });

  it('keeps spaces, commas, = , quotes, backslashes, line breaks and empty strings exact in tags and fields', async () => {
    const key = `${run}/escape d,x=1 "q" 'it''s'`;
    const records = [
      point({ station: 'a b,c=d"e', quality: 'q\\x', unit: '', dataset: 'sea ice,north', variable: 'temp="air"' }, 0),
      point({ station: 'line\nbreak', id: 'id "1"\\ \n2', attrs: '{"s":"a\\"b, c=d"}', position: { source: 'file a,b=c.ndjson', partition: 0, offset: 1 } }, 1),
      point({ station: null, quality: null, unit: null, elevation: null, attrs: null, id: null, key: 'kafka key' }, 2),
    ];
    await store.writeRecords(key, { memoryType: 'TemperatureMemory', dataset: 'stations', records });
    const back = await store.readRecords(key);
    const comparable = ({ size: _size, ...rest }: PointRecord) => rest;
    assert.deepEqual(back.map((r) => comparable(r as PointRecord)), records.map(comparable).sort((a, b) => a.position.source < b.position.source ? -1 : a.position.source > b.position.source ? 1 : a.position.offset - b.position.offset));
    const keys: string[] = [];
    for await (const k of store.listKeys(`${run}/escape d,x=1 "q"`)) keys.push(k);
    assert.deepEqual(keys, [key]);
    await store.deleteRecords(key);
  });

  it('keeps records of one series at the same microsecond apart', async () => {
    const key = `${run}/same-time`;
    const twin = (offset: number, value: number) => point({ timeUs: 1_767_225_600_000_000, station: 's', value, position: { source: 'obs', partition: 0, offset } });
    const records = [twin(1, 1.5), twin(2, 2.5), twin(3, 3.5)];
    await store.writeRecords(key, { memoryType: 'TemperatureMemory', dataset: 'stations', records });
    assert.deepEqual((await store.readRecords(key)).map((r) => r.value), [1.5, 2.5, 3.5]);
    await store.deleteRecords(key);
  });

  it('writes in batches of batch_points and into database/retention_policy', async () => {
    const batched = new InfluxDBStorage(config({ batch_points: 7, bucket: `${database}/autogen` }));
    try {
      const key = `${run}/batched`;
      const result = await batched.writeRecords(key, { memoryType: 'TemperatureMemory', dataset: 'stations', records: samplePoints(50) });
      assert.equal(result.rows, 50);
      assert.equal(result.container, `${database}/autogen.earth_TemperatureMemory`);
      assert.ok(result.bytes > 50 * 100);
      assert.deepEqual((await batched.readRecords(key)).map((r) => r.id), samplePoints(50).map((r) => r.id));
      await batched.deleteRecords(key);
    } finally {
      await batched.close();
    }
  });

  it('refuses vector features clearly and leaves the stored points alone', async () => {
    const key = `${run}/vectors`;
    await store.writeRecords(key, { memoryType: 'TemperatureMemory', dataset: 'stations', records: samplePoints(3) });
    await assert.rejects(store.writeRecords(key, { memoryType: 'FireMemory', dataset: 'fires', records: [...samplePoints(1), ...sampleVectors(2)] }), (e: unknown) => {
      assert.ok(e instanceof StorageError && !e.retriable, String(e));
      assert.match(e.message, /2 of 3 records are vector features; InfluxDB keeps points only/);
      return true;
    });
    assert.equal((await store.readRecords(key)).length, 3);
    await store.deleteRecords(key);
  });

  it('fails at once, not retriable, on bad credentials', async () => {
    for (const bad of [config({ password: 'wrong-password' }), config({ username: undefined, password: undefined, token: `${username}:wrong-password` })]) {
      const denied = new InfluxDBStorage(bad);
      let attempts = 0;
      await assert.rejects(
        withRetry(() => {
          attempts++;
          return denied.writeRecords(`${run}/denied`, { memoryType: 'TemperatureMemory', dataset: 'stations', records: samplePoints(1) });
        }, { maxElapsedMs: 10_000, initialBackoffMs: 20 }),
        (e: unknown) => {
          assert.ok(e instanceof AccessDeniedError, String(e));
          assert.ok(!e.describe().includes('wrong-password'));
          return true;
        },
      );
      assert.equal(attempts, 1);
    }
  });

  it('accepts the 1.x token form username:password', async () => {
    const tokened = new InfluxDBStorage(config({ username: undefined, password: undefined, token: `${username}:${password}` }));
    const key = `${run}/token`;
    await tokened.writeRecords(key, { memoryType: 'TemperatureMemory', dataset: 'stations', records: samplePoints(2) });
    assert.equal((await tokened.readRecords(key)).length, 2);
    await tokened.deleteRecords(key);
  });

  it('says clearly when the 2.x API is asked of a 1.x server', async () => {
    const v2 = new InfluxDBStorage(config({ api: 'v2', username: undefined, password: undefined, token: 't', org: 'o' }));
    await assert.rejects(v2.writeRecords(`${run}/v2`, { memoryType: 'TemperatureMemory', dataset: 'stations', records: samplePoints(1) }), (e: unknown) => {
      assert.ok(e instanceof StorageError && !e.retriable && e.constructor === StorageError, String(e));
      assert.match(e.describe(), /HTTP 404/);
      return true;
    });
  });

  it('refuses conflicting credentials and unknown keys in the config', () => {
    assert.throws(() => new InfluxDBStorage(config({ token: 'a:b' })), ConfigError);
    assert.throws(() => new InfluxDBStorage(config({ password: undefined })), ConfigError);
    assert.throws(() => influxdbBackendSchema.parse({ type: 'influxdb', url, bucket: 'b', extra: 1 }));
    assert.ok(!new InfluxDBStorage(config({ url: 'http://u:secret@127.0.0.1:8086/' })).location.includes('secret'));
  });

  it('writes line protocol as documented', () => {
    const [line] = toLines('k 1', 'earth_T M', [
      { ...samplePoints(1)[0]!, station: 'a,b=c d', quality: 'q\\1', unit: null, elevation: null, attrs: '{"x":"a\\"b"}', timeUs: 42, value: 15, lon: -0, lat: 1e-7 },
    ]);
    assert.equal(
      line,
      'earth_T\\ M,dataset=stations,object_key=k\\ 1,station=a\\,b\\=c\\ d,variable=temperature ' +
        'value=15,lon=-0,lat=1e-7,quality_text="q\\\\1",id="p-0",attrs="{\\"x\\":\\"a\\\\\\"b\\"}",record_key="k0",source="obs",partition=0i,offset=0i,size=120i 42',
    );
    assert.equal(stringLiteral(`it's a \\ test`), `'it\\'s a \\\\ test'`);
    assert.equal(regexEscape('a/b.c(1)'), 'a\\/b\\.c\\(1\\)');
  });
});
