import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { MongoClient, type CommandStartedEvent } from 'mongodb';
import { AccessDeniedError, StorageError } from '../../src/core/errors.js';
import { backendConformance } from '../../test/conformance/backend-suite.js';
import { recordStoreConformance, samplePoints } from '../../test/conformance/record-store-suite.js';
import { mongodbBackendSchema, type MongodbBackendConfig } from './config.js';
import { MongoDBStorage, parseConnectionString } from './storage.js';

const url = process.env.MONGODB_URL;
const password = process.env.MONGODB_PASSWORD;
if (!url || !password) {
  throw new Error('MONGODB_URL and MONGODB_PASSWORD are not set: run `EARTHMEM_TEST_SERVICES=mongodb node scripts/test.mjs connectors/mongodb` (scripts/services up mongodb)');
}

// A fresh database per run, dropped at the end.
const database = `earthmem_test_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
const admin = new MongoClient(url);
after(async () => {
  await admin.db(database).dropDatabase();
  await admin.close();
});

function config(overrides: Partial<Record<keyof MongodbBackendConfig, unknown>> = {}): MongodbBackendConfig {
  return mongodbBackendSchema.parse({ type: 'mongodb', connection_string: url, database, ...overrides });
}
const withCredentials = (user: string, pass: string) => url!.replace(/^mongodb:\/\/[^@]*@/, `mongodb://${user}:${pass}@`);
const unreachable = 'mongodb://127.0.0.1:1/earth_memory?serverSelectionTimeoutMS=200&connectTimeoutMS=200';
const badCredentials = withCredentials(process.env.MONGODB_USERNAME ?? 'earthmem', 'wrong-password');

backendConformance({
  name: 'mongodb (FerretDB)',
  open: async () => new MongoDBStorage(config()),
  openUnreachable: async () => new MongoDBStorage(config({ connection_string: unreachable })),
  openBadCredentials: async () => new MongoDBStorage(config({ connection_string: badCredentials })),
  secrets: [password],
});

recordStoreConformance({
  name: 'mongodb (FerretDB)',
  open: async () => new MongoDBStorage(config()),
  openUnreachable: async () => new MongoDBStorage(config({ connection_string: unreachable })),
  secrets: [password],
});

describe('mongodb specifics', () => {
  const run = `specifics-${randomBytes(3).toString('hex')}`;

  it('sends the configured write concern with every write and the read concern with every read', async () => {
    for (const [writeConcern, readConcern, expectedWrite] of [
      [{ w: 'majority', j: true, wtimeout: '5s' }, 'majority', { w: 'majority', j: true, wtimeout: 5000 }],
      [{ w: 1 }, 'local', { w: 1 }],
    ] as const) {
      const storage = new MongoDBStorage(config({ write_concern: writeConcern, read_concern: readConcern }), { monitorCommands: true });
      const commands: CommandStartedEvent[] = [];
      storage.client.on('commandStarted', (event) => commands.push(event));
      try {
        const key = `${run}/concern-${readConcern}`;
        await storage.put(`${key}.bin`, new Uint8Array(10));
        await storage.put(`${key}.bin`, new Uint8Array(20));
        await storage.get(`${key}.bin`);
        await storage.getRange(`${key}.bin`, 2, 3);
        await storage.stat(`${key}.bin`);
        for await (const _ of storage.list(key)) void _;
        await storage.delete(`${key}.bin`);
        await storage.writeRecords(key, { memoryType: 'TemperatureMemory', dataset: 'stations', records: samplePoints(3) });
        await storage.writeRecords(key, { memoryType: 'TemperatureMemory', dataset: 'stations', records: samplePoints(2) });
        await storage.readRecords(key);
        for await (const _ of storage.listKeys(key)) void _;
        await storage.deleteRecords(key);
      } finally {
        await storage.close();
      }
      const writes = commands.filter((c) => ['insert', 'update', 'delete', 'findAndModify', 'createIndexes'].includes(c.commandName));
      const reads = commands.filter((c) => ['find', 'aggregate', 'count', 'distinct'].includes(c.commandName));
      assert.deepEqual([...new Set(writes.map((c) => c.commandName))].sort(), ['createIndexes', 'delete', 'findAndModify', 'insert']);
      assert.ok(reads.length >= 6, `reads seen: ${reads.length}`);
      const plain = (value: unknown) => JSON.parse(JSON.stringify(value ?? null)) as unknown;
      for (const c of writes) assert.deepEqual(plain(c.command.writeConcern), expectedWrite, `${c.commandName} writeConcern`);
      for (const c of reads) assert.deepEqual(plain(c.command.readConcern), { level: readConcern }, `${c.commandName} readConcern`);
    }
  });

  it('readers see a whole old or whole new body while a multi-chunk object is overwritten', { timeout: 120_000 }, async () => {
    const storage = new MongoDBStorage(config());
    try {
      const key = `${run}/swap.bin`;
      const bodies = [new Uint8Array(3 * 1024 * 1024 + 5).fill(1), new Uint8Array(2 * 1024 * 1024 + 9).fill(2)];
      await storage.put(key, bodies[0]!);
      let reading = true;
      const reads: Uint8Array[] = [];
      const reader = (async () => {
        while (reading) reads.push(await storage.get(key));
      })();
      for (let i = 1; i <= 6; i++) await storage.put(key, bodies[i % 2]!);
      reading = false;
      await reader;
      assert.ok(reads.length > 0);
      for (const body of reads) assert.ok(bodies.some((b) => b.byteLength === body.byteLength && b.every((x, i) => x === body[i])), 'a whole body');
      await storage.delete(key);
    } finally {
      await storage.close();
    }
  });

  it('readers see one whole write while a key is rewritten', { timeout: 120_000 }, async () => {
    const storage = new MongoDBStorage(config());
    try {
      const key = `${run}/rewrite`;
      const sets = [samplePoints(300, 'obs', 0, 0), samplePoints(200, 'obs', 0, 1000)];
      await storage.writeRecords(key, { memoryType: 'TemperatureMemory', dataset: 'stations', records: sets[0]! });
      const whole = sets.map((set) => set.map((r) => r.id).join());
      let reading = true;
      const lengths: number[] = [];
      const reader = (async () => {
        while (reading) {
          const back = await storage.readRecords(key);
          assert.ok(whole.includes(back.map((r) => r.id).join()), 'the rows of one write, in order');
          lengths.push(back.length);
        }
      })();
      for (let i = 1; i <= 6; i++) await storage.writeRecords(key, { memoryType: 'TemperatureMemory', dataset: 'stations', records: sets[i % 2]! });
      reading = false;
      await reader;
      assert.ok(lengths.length > 0 && lengths.every((n) => n === 300 || n === 200), `lengths ${lengths.join(',')}`);
      await storage.deleteRecords(key);
    } finally {
      await storage.close();
    }
  });

  it('moves a key to another memory type collection without leaving its old rows', async () => {
    const storage = new MongoDBStorage(config());
    try {
      const key = `${run}/moved`;
      const first = await storage.writeRecords(key, { memoryType: 'TemperatureMemory', dataset: 'stations', records: samplePoints(4) });
      const second = await storage.writeRecords(key, { memoryType: 'HumidityMemory', dataset: 'stations', records: samplePoints(3) });
      assert.equal(first.container, `${database}.memory_TemperatureMemory`);
      assert.equal(second.container, `${database}.memory_HumidityMemory`);
      assert.ok(second.bytes > 0);
      assert.equal((await storage.readRecords(key)).length, 3);
      assert.equal(await admin.db(database).collection('memory_TemperatureMemory').countDocuments({ object_key: key }), 0);
      await storage.deleteRecords(key);
      assert.equal(await admin.db(database).collection('memory_HumidityMemory').countDocuments({ object_key: key }), 0);
    } finally {
      await storage.close();
    }
  });

  it('refuses bad credentials at once for records too', async () => {
    const storage = new MongoDBStorage(config({ connection_string: badCredentials }));
    try {
      await assert.rejects(storage.writeRecords(`${run}/denied`, { memoryType: 'TemperatureMemory', dataset: 'stations', records: samplePoints(1) }), (e: unknown) => {
        assert.ok(e instanceof AccessDeniedError, String(e));
        assert.ok(!e.describe().includes('wrong-password'));
        return true;
      });
    } finally {
      await storage.close();
    }
  });

  it('refuses memory types that cannot name a collection', async () => {
    const storage = new MongoDBStorage(config());
    try {
      await assert.rejects(storage.writeRecords(`${run}/bad-type`, { memoryType: 'a.b$c', dataset: 'x', records: samplePoints(1) }), (e: unknown) => e instanceof StorageError && !e.retriable);
    } finally {
      await storage.close();
    }
  });

  it('fails clearly, not retriable, when spatial_index is asked of a server without 2dsphere indexes (FerretDB 1.x)', async () => {
    const storage = new MongoDBStorage(config({ spatial_index: true, collection_prefix: 'spatial_' }));
    try {
      await assert.rejects(storage.writeRecords(`${run}/spatial`, { memoryType: 'TemperatureMemory', dataset: 'stations', records: samplePoints(1) }), (e: unknown) => {
        assert.ok(e instanceof StorageError && !e.retriable, String(e));
        assert.match(e.describe(), /createIndexes|index/i);
        return true;
      });
    } finally {
      await storage.close();
    }
  });

  it('keeps credentials out of location and uri; takes the database from the URL', () => {
    const storage = new MongoDBStorage(mongodbBackendSchema.parse({ type: 'mongodb', connection_string: 'mongodb://u:s3cret@127.0.0.1:17017/mydb?authSource=admin' }));
    assert.equal(storage.database, 'mydb');
    assert.equal(storage.location, 'mongodb://127.0.0.1:17017/mydb/memory_*');
    assert.ok(!storage.uri('a/b').includes('s3cret'));
    assert.deepEqual(parseConnectionString('mongodb+srv://cluster.example/'), { hosts: 'mongodb+srv://cluster.example' });
    assert.equal(new MongoDBStorage(mongodbBackendSchema.parse({ type: 'mongodb', connection_string: 'mongodb://127.0.0.1' })).database, 'earth_memory');
    assert.throws(() => mongodbBackendSchema.parse({ type: 'mongodb', connection_string: 'x', unknown_key: 1 }));
  });
});
