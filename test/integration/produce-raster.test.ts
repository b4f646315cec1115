/**
 * `earthmem produce --raster` against the real broker: a GeoTIFF made by GDAL goes out as one
 * message per tile, keyed by the scene id; consumed back with kafkajs, every envelope decodes
 * and the tiles put together equal what rasterio reads from the file.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { decodeRasterTile } from '../../src/records/raster.js';
import type { RasterRecord } from '../../src/core/raster.js';
import { gdalPython } from '../support/cog.js';
import { tempDir } from '../support/fixtures.js';
import { brokers, createTopic } from '../support/kafka.js';
import { referencePython } from '../support/python.js';

const dir = tempDir('produce-raster');
const run = `${process.pid}-${Date.now()}`;
after(() => rmSync(dir, { recursive: true, force: true }));
const cli = (args: string[]) => spawnSync(process.execPath, ['bin/earthmem.js', ...args], { encoding: 'utf8', env: process.env });

function makeTiff(path: string): void {
  const script = `
import sys, numpy as np
from osgeo import gdal, osr
gdal.UseExceptions()
ds = gdal.GetDriverByName('GTiff').Create(sys.argv[1], 700, 450, 1, gdal.GDT_Float32, ['TILED=YES', 'COMPRESS=DEFLATE'])
ds.SetGeoTransform([399960, 20, 0, 5100000, 0, -20])
srs = osr.SpatialReference(); srs.ImportFromEPSG(32633); ds.SetProjection(srs.ExportToWkt())
data = np.random.default_rng(3).normal(280, 10, (450, 700)).astype('float32')
data[:40, :40] = -9999
ds.GetRasterBand(1).WriteArray(data); ds.GetRasterBand(1).SetNoDataValue(-9999)
ds = None`;
  execFileSync(gdalPython(), ['-c', script, path]);
}

async function consume(topic: string, expected: number): Promise<{ key: string | null; value: Buffer; partition: number; offset: number }[]> {
  const kafka = new Kafka({ brokers: brokers().split(','), clientId: 'earthmem-test', logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `${topic}-check` });
  const out: { key: string | null; value: Buffer; partition: number; offset: number }[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`consumed ${out.length} of ${expected} in 90 s`)), 90_000);
      void consumer
        .run({
          eachMessage: async ({ partition, message }) => {
            out.push({ key: message.key?.toString() ?? null, value: message.value!, partition, offset: Number(message.offset) });
            if (out.length === expected) {
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
  return out;
}

describe('earthmem produce --raster', () => {
  const tif = join(dir, 'T33_scene.tif');
  makeTiff(tif);
  const reference = JSON.parse(
    execFileSync(referencePython(), ['-c', 'import sys, json, rasterio\nwith rasterio.open(sys.argv[1]) as d:\n    d.read(1).astype("<f4").tofile(sys.argv[1] + ".bin")\n    print(json.dumps(list(d.transform.to_gdal())))', tif]).toString(),
  ) as number[];
  const all = new Float32Array(readFileSync(`${tif}.bin`).buffer.slice(0));

  for (const compression of ['zstd', 'deflate', 'none'] as const) {
    it(`sends each 256-px tile as one ${compression} envelope keyed by the scene; consumed back, they are the file`, { timeout: 180_000 }, async () => {
      const topic = `earthmem-test-raster-${compression}-${run}`;
      await createTopic(topic, 3);
      const result = cli(['produce', '--raster', tif, '--topic', topic, '--dataset', 'era5', '--variable', 't2m', '--time', '20260115T103000Z', '--tile-size', '256', '--compression', compression]);
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, /sent 6 tiles of .*T33_scene\.tif to earthmem-test-raster/);
      const messages = await consume(topic, 6);
      // One key: every tile of the scene lands in one partition, in order.
      assert.deepEqual(new Set(messages.map((m) => m.key)), new Set(['T33_scene']));
      assert.equal(new Set(messages.map((m) => m.partition)).size, 1);
      const mosaic = new Float32Array(700 * 450).fill(NaN);
      const records: RasterRecord[] = [];
      for (const m of messages) {
        const decoded = await decodeRasterTile(m.value, { source: topic, partition: m.partition, offset: m.offset }, { maxTileBytes: 1 << 20 });
        assert.ok('record' in decoded, 'deadLetter' in decoded ? decoded.deadLetter.message : '');
        const r = decoded.record;
        records.push(r);
        const px = new Float32Array(r.pixels.buffer.slice(r.pixels.byteOffset, r.pixels.byteOffset + r.pixels.byteLength));
        for (let row = 0; row < r.height; row++) mosaic.set(px.subarray(row * r.width, (row + 1) * r.width), (r.y + row) * 700 + r.x);
      }
      assert.deepEqual(Buffer.from(mosaic.buffer), Buffer.from(all.buffer));
      const r = records[0]!;
      assert.deepEqual(r.scene.geotransform, reference);
      assert.equal(r.scene.epsg, 32633);
      assert.equal(r.scene.nodata, -9999);
      assert.equal(r.dataset, 'era5');
      assert.equal(r.timeUs, Date.parse('2026-01-15T10:30:00Z') * 1000);
      assert.deepEqual(records.map((t) => [t.x, t.y, t.width, t.height]).sort(), [[0, 0, 256, 256], [0, 256, 256, 194], [256, 0, 256, 256], [256, 256, 256, 194], [512, 0, 188, 256], [512, 256, 188, 194]]);
      if (compression !== 'none') assert.ok(messages.every((m) => m.value.length < 12 + 2048 + 256 * 256 * 4));
    });
  }

  it('tiles of 640 KB go one per request: two in one batch would pass the broker\'s 1 MiB limit', { timeout: 120_000 }, async () => {
    const topic = `earthmem-test-raster-big-${run}`;
    await createTopic(topic, 1);
    const result = cli(['produce', '--raster', tif, '--topic', topic, '--dataset', 'd', '--variable', 'v', '--time', '2026-01-15T10:30:00Z', '--tile-size', '400', '--compression', 'none']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /sent 4 tiles/);
    const messages = await consume(topic, 4);
    assert.equal(Math.max(...messages.map((m) => m.value.length)) > 640_000, true);
  });

  it('a Kafka source with format raster_tile decodes the tiles in the parse stage; a bad envelope is dead-lettered with its bytes', { timeout: 180_000 }, async () => {
    const topic = `earthmem-test-raster-pipeline-${run}`;
    await createTopic(topic, 2);
    assert.equal(cli(['produce', '--raster', tif, '--topic', topic, '--dataset', 'd', '--variable', 'v', '--time', '2026-01-15T10:30:00Z', '--tile-size', '256', '--compression', 'deflate']).status, 0);
    const bad = Buffer.concat([Buffer.from('EMRT\x02\0\0\0\x03\0\0\0', 'latin1'), Buffer.from([0xff, 0xfe, 0x00])]);
    const kafka = new Kafka({ brokers: brokers().split(','), clientId: 'earthmem-test', logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ key: 'bad', value: bad }] });
    await producer.disconnect();
    const data = join(dir, 'kafka-out');
    const yaml = readFileSync('pipelines/demo.yaml', 'utf8')
      .replace(/source:\n(  .*\n)+/, `source:\n  type: kafka\n  brokers: \${KAFKA_BROKERS}\n  topics: [${topic}]\n  group_id: ${topic}-g\n  format: raster_tile\n  max_record_bytes: 1MiB\n`)
      .replace('  rules:\n', '  rules:\n    - match: { kind: raster }\n      memory_type: SatelliteMemory\n')
      .replace('      compression: { algorithm: zstd, level: low }\n', '      compression: { algorithm: zstd, level: low }\n      raster_backend: { type: cog, base_path: "${EARTHMEM_DATA:-data/demo}/cogs" }\n')
      .replaceAll('${EARTHMEM_DATA:-data/demo}', data);
    const pipeline = join(dir, 'raster-kafka.yaml');
    writeFileSync(pipeline, yaml);
    const replay = cli(['replay', pipeline, '--from-beginning']);
    assert.equal(replay.status, 0, replay.stderr);
    const letters = readFileSync(join(data, 'dead-letter.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>);
    // The six tiles make one COG on the hot tier's raster_backend; only the bad envelope is dead-lettered.
    assert.equal(letters.length, 1);
    assert.match(replay.stdout, /written:\s+6\b/);
    assert.equal(readdirSync(join(data, 'cogs'), { recursive: true }).filter((f) => String(f).endsWith('.tif')).length, 1);
    const envelope = letters.find((l) => l.reason === 'bad_envelope')!;
    assert.match(envelope.message!, /version 2/);
    assert.equal(Buffer.compare(Buffer.from(envelope.payload_base64!, 'base64'), bad), 0);
  });

  it('usage: --raster needs --dataset, --variable, a valid --time; --key-field is refused', () => {
    const base = ['produce', '--raster', tif, '--topic', 'x'];
    assert.match(cli([...base, '--variable', 'v', '--time', '2026-01-15T00:00:00Z']).stderr, /--raster needs --dataset/);
    assert.match(cli([...base, '--dataset', 'd', '--variable', 'v', '--time', 'yesterday']).stderr, /bad --time: yesterday/);
    assert.match(cli([...base, '--dataset', 'd', '--variable', 'v', '--time', '20260115T103000Z', '--key-field', 'k']).stderr, /keyed by their scene id/);
    assert.match(cli([...base, '--dataset', 'd', '--variable', 'v', '--time', '20260115T103000Z', '--compression', 'lz4']).stderr, /with --raster: zstd, deflate or none/);
    assert.equal(cli([...base, '--dataset', 'd', '--variable', 'v', '--time', '20260115T103000Z', '--tile-size', '8']).status, 2);
    assert.match(cli(['produce', '--topic', 'x', '--dataset', 'd', 'f.ndjson']).stderr, /--dataset needs --raster/);
  });
});
