import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { referencePython } from '../support/python.js';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { parseConfigValue } from '../../src/config/load.js';
import { SqliteCatalog } from '../../src/catalog/sqlite.js';
import type { CatalogRow } from '../../src/catalog/catalog.js';
import { pipelineSchema, type PipelineConfig } from '../../src/pipeline/schema.js';
import { runPipeline, type RunSummary } from '../../src/pipeline/run.js';
import { CogReader } from '../../src/encoders/cog/reader.js';
import { gdalCheckCogs, gdalProblems, rasterioCheckCogs } from '../support/cog.js';
import { tempDir } from '../support/fixtures.js';
import { brokers, createTopic, killWorkers, lag, startWorker, waitFor } from '../support/kafka.js';
import { produceTiles, sceneTiles, scenePixels, UTM_SCENE, writeRaw, type TestScene } from '../support/raster.js';
import { open } from 'node:fs/promises';

const PARTITIONS = 3;
const runId = `${process.pid}-${Date.now().toString(36)}`;

interface Case {
  name: string;
  topic: string;
  group: string;
  dir: string;
  config: PipelineConfig;
  /** The same pipeline as a file, for the CLI. */
  file: string;
}

/** A Kafka → COG pipeline on a local_file tier with format: cog (or the given tiers), SQLite catalog. */
function makeCase(name: string, tiers: Record<string, unknown> | null = null, over: { maxAge?: string; rules?: unknown[]; routing?: unknown } = {}): Case {
  const dir = tempDir(`raster-${name}`);
  const topic = `raster-${name}-${runId}`;
  const group = `g-${topic}`;
  const input = {
      source: { type: 'kafka', format: 'raster_tile', brokers: brokers(), topics: [topic], group_id: group, start: 'earliest', commit_interval: '200ms', lag_log_interval: '0s' },
      classify: { rules: over.rules ?? [{ match: { kind: 'raster' }, memory_type: 'SatelliteMemory' }], default: 'dead_letter' },
      ...(over.routing === undefined ? {} : { routing: over.routing }),
      storage: {
        tier_configs: tiers ?? {
          hot: {
            primary_backend: { type: 'local_file', base_path: join(dir, 'hot'), format: 'cog', organization: '{dataset}/{year}/{month}', compression: 'DEFLATE', predictor: 3, blocksize: 256 },
          },
        },
      },
      raster: { max_age: over.maxAge ?? '10m' },
      catalog: { type: 'sqlite', path: join(dir, 'catalog.sqlite') },
      dead_letter: { type: 'local_file', path: join(dir, 'dead-letter.ndjson') },
  };
  const config = parseConfigValue(input, 'raster test', pipelineSchema);
  const file = join(dir, 'pipeline.yaml');
  writeFileSync(file, JSON.stringify(input, null, 2));
  return { name, topic, group, dir, config, file };
}


async function catalogList(c: Case): Promise<CatalogRow[]> {
  const catalog = new SqliteCatalog((c.config.catalog as { path: string }).path);
  try {
    return (await catalog.list({})).filter((r) => r.kind === 'raster');
  } finally {
    await catalog.close();
  }
}

/** Runs the pipeline until `until` holds on the catalog, then drains; returns the summary. */
async function runUntil(c: Case, until: (rows: CatalogRow[]) => boolean, log: string[] = []): Promise<RunSummary> {
  const abort = new AbortController();
  const running = runPipeline(c.config, { signal: abort.signal, log: (line) => log.push(line) });
  let failed: unknown;
  running.catch((e: unknown) => (failed = e));
  try {
    await waitFor(`${c.name}: catalog`, async () => {
      if (failed) throw failed;
      return until(await catalogList(c));
    }, 120_000);
  } finally {
    abort.abort();
  }
  return running;
}

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

async function checkCog(path: string, scene: TestScene, raw: string, compression: string, predictor: number): Promise<void> {
  const [gdal] = gdalCheckCogs([{ path, cogBlocksize: 256 }]);
  assert.deepEqual(gdalProblems(gdal!), [], `GDAL on ${path}`);
  const file = await open(path, 'r');
  const reader = await CogReader.open(async (offset, length) => {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await file.read(buf, 0, length, offset);
    return buf.subarray(0, bytesRead);
  });
  await file.close();
  const [rio] = rasterioCheckCogs([
    {
      tif: path, raw, width: scene.width, height: scene.height, bands: 1, dtype: scene.dtype, geotransform: scene.geotransform, epsg: scene.crs,
      nodata: scene.nodata === null ? null : Number.isNaN(scene.nodata) ? 'nan' : scene.nodata, resampling: 'average', compression, predictor,
      levels: reader.info.levels.slice(1).map((l) => [l.width, l.height]),
    },
  ]);
  assert.deepEqual(rio!.problems, [], `rasterio/rio-cogeo on ${path}`);
}

describe('Kafka raster tiles → one COG per scene (real broker, GDAL, rio-cogeo, rasterio)', () => {
  const scene = UTM_SCENE();
  const { bytes } = scenePixels(scene);
  const dirs: string[] = [];
  after(() => undefined);
  let completeSha = '';

  it('tiles not aligned to the blocks, shuffled over 3 partitions: one complete COG, catalogued, offsets committed', async () => {
    const c = makeCase('local');
    dirs.push(c.dir);
    await createTopic(c.topic, PARTITIONS);
    const tiles = await sceneTiles(scene, bytes, [200, 150], 11);
    await produceTiles(c.topic, tiles.map((t) => t.envelope), PARTITIONS);
    const summary = await runUntil(c, (rows) => rows.length === 1);
    assert.equal(summary.complete, true);
    assert.equal(summary.recordsWritten, tiles.length);
    const rows = await catalogList(c);
    assert.equal(rows.length, 1);
    const row = rows[0]!;
    assert.equal(row.format, 'cog');
    assert.equal(row.kind, 'raster');
    assert.equal(row.memoryType, 'SatelliteMemory');
    assert.match(row.key, /^SatelliteMemory\/sentinel2\/2024\/03\/S2A_T33UUP_ndvi_20240301T103000Z\.tif$/);
    assert.equal(row.raster?.partial, false);
    assert.equal(row.raster?.epsg, 32633);
    assert.equal(row.raster?.width, 700);
    assert.equal(row.raster?.height, 530);
    assert.equal(row.raster?.dtype, 'float32');
    assert.equal(row.raster?.overviews, 2);
    assert.deepEqual(row.raster?.bboxNative, [500000, 5294700, 507000, 5300000]);
    assert.ok(row.bbox[0] > 14 && row.bbox[2] < 16 && row.bbox[1] > 47 && row.bbox[3] < 48, `WGS 84 bbox ${row.bbox}`);
    assert.equal(sha(row.uri), row.sha256);
    completeSha = row.sha256;
    await checkCog(row.uri, scene, writeRaw(join(c.dir, 'scene.raw'), bytes), 'DEFLATE', 3);
    assert.equal(await lag(c.topic, c.group), 0, 'every tile offset committed');
    // A replay (another group from the beginning): every tile found durable, nothing rewritten.
    const replay = { ...c, group: `${c.group}-replay`, config: { ...c.config, source: { ...c.config.source, group_id: `${c.group}-replay` } } as PipelineConfig };
    const stop = new AbortController();
    const again = await runPipeline(replay.config, {
      signal: stop.signal,
      progressIntervalMs: 50,
      onProgress: (p) => {
        if (p.recordsAlreadyDurable >= tiles.length) stop.abort();
      },
    });
    assert.equal(again.objects, 0, 'no COG rewritten');
    assert.equal(again.recordsAlreadyDurable, tiles.length);
    assert.equal(sha(row.uri), row.sha256);
    assert.equal((await catalogList(c)).length, 1);
  });

  it('same tiles in another order, tiled differently: the same sha256', async () => {
    const c = makeCase('order');
    dirs.push(c.dir);
    await createTopic(c.topic, PARTITIONS);
    const tiles = await sceneTiles(scene, bytes, [128, 97], 99, 'deflate');
    // One more tile of the same scene_id that describes another grid: dead-lettered, the scene unharmed.
    const [stray] = await sceneTiles({ ...scene, width: scene.width + 1 }, scenePixels({ ...scene, width: scene.width + 1 }).bytes, [128, 97], 1);
    await produceTiles(c.topic, [...tiles.slice(0, 5).map((t) => t.envelope), stray!.envelope, ...tiles.slice(5).map((t) => t.envelope)], PARTITIONS);
    const summary = await runUntil(c, (rows) => rows.length === 1);
    const [row] = await catalogList(c);
    assert.ok(completeSha !== '');
    assert.equal(row!.sha256, completeSha);
    assert.deepEqual(summary.deadLetterReasons, { scene_mismatch: 1 });
    const letter = JSON.parse(readFileSync(join(c.dir, 'dead-letter.ndjson'), 'utf8').trim()) as { reason: string; message: string };
    assert.match(letter.message, /701 × 530 float32×1 .* but its scene's first tile says 700 × 530/);
    assert.equal(await lag(c.topic, c.group), 0);
  });

  it('max_age writes a partial scene (nodata, catalogued partial); late tiles rebuild it at the same key, ending byte-identical to the complete one', async () => {
    const c = makeCase('late', null, { maxAge: '2s' });
    dirs.push(c.dir);
    await createTopic(c.topic, PARTITIONS);
    const tiles = await sceneTiles(scene, bytes, [200, 150], 5);
    const [late1, late2, ...early] = tiles;
    await produceTiles(c.topic, early.map((t) => t.envelope), PARTITIONS);
    const log: string[] = [];
    await runUntil(c, (rows) => rows.length === 1, log);
    let [row] = await catalogList(c);
    assert.equal(row!.raster?.partial, true);
    assert.ok(row!.raster!.missingBlocks > 0);
    assert.equal(row!.raster!.windows!.length, early.length);
    const [gdal] = gdalCheckCogs([{ path: row!.uri, cogBlocksize: 256 }]);
    assert.deepEqual(gdalProblems(gdal!), []);
    assert.equal(await lag(c.topic, c.group), 0);
    const key = row!.key;
    // One late tile: rebuilt, still partial.
    await produceTiles(c.topic, [late1!.envelope], PARTITIONS);
    await runUntil(c, (rows) => rows.length === 1 && rows[0]!.raster!.tiles === early.length + 1, log);
    [row] = await catalogList(c);
    assert.equal(row!.key, key);
    assert.equal(row!.raster?.partial, true);
    // The last one: complete, the same bytes as the scene written in one go.
    await produceTiles(c.topic, [late2!.envelope], PARTITIONS);
    await runUntil(c, (rows) => rows.length === 1 && rows[0]!.raster!.partial === false, log);
    [row] = await catalogList(c);
    assert.equal(row!.key, key);
    assert.equal(row!.sha256, completeSha, log.join('\n'));
    assert.ok(log.some((l) => /rebuilding .* for a late tile/.test(l)), log.join('\n'));
    assert.equal(await lag(c.topic, c.group), 0);
  });

  it('on S3 (raster_backend of a parquet tier), GCS (format: cog) and Azure (format: cloud-optimized-geotiff): each scene a valid COG in its tier', async () => {
    const env = process.env;
    const prefix = `raster-${runId}/`;
    const cog = { compression: 'ZSTD', predictor: 2, organization: '{dataset}/{variable}' };
    const c = makeCase(
      'stores',
      {
        hot: {
          primary_backend: { type: 'local_file', base_path: join(tempDir('raster-parquet'), 'hot') },
          raster_backend: { type: 's3', bucket: env.S3_BUCKET_WARM, region: env.AWS_REGION, endpoint: env.S3_ENDPOINT, prefix, ...cog },
        },
        warm: { primary_backend: { type: 'gcs', bucket: env.GCS_BUCKET_COLD, project: env.GCS_PROJECT, endpoint: env.GCS_ENDPOINT, prefix, format: 'cog', ...cog } },
        cold: {
          primary_backend: {
            type: 'azure_blob', account: env.AZURE_ACCOUNT, container: env.AZURE_CONTAINER_GLACIER, connection_string: env.AZURE_CONNECTION_STRING, prefix,
            format: 'cloud-optimized-geotiff', ...cog,
          },
        },
      },
      {
        rules: [
          { match: { kind: 'raster', variable: 'b04' }, memory_type: 'S3Memory' },
          { match: { kind: 'raster', variable: 'b08' }, memory_type: 'GcsMemory' },
          { match: { kind: 'raster', variable: 'b11' }, memory_type: 'AzureMemory' },
        ],
        routing: { default: 'hot', memory_types: { GcsMemory: 'warm', AzureMemory: 'cold' } },
      },
    );
    dirs.push(c.dir);
    await createTopic(c.topic, PARTITIONS);
    const scenes = ['b04', 'b08', 'b11'].map((variable, i) => UTM_SCENE({ variable, dtype: 'uint16', nodata: 0, width: 1500 + i * 37, height: 933 }));
    const envelopes: Uint8Array[] = [];
    const raws = new Map<string, Uint8Array>();
    for (const [i, s] of scenes.entries()) {
      const { bytes: b } = scenePixels(s, 20 + i);
      raws.set(s.variable, b);
      envelopes.push(...(await sceneTiles(s, b, [256, 256], 30 + i)).map((t) => t.envelope));
    }
    await produceTiles(c.topic, shuffledInterleave(envelopes), PARTITIONS);
    await runUntil(c, (rows) => rows.length === 3);
    const rows = await catalogList(c);
    const { openStorage, readStored } = await import('../../src/pipeline/read.js');
    const storage = await openStorage(c.config);
    const stored = new Map<string, Uint8Array>();
    try {
      // Read all three first: the reference checks take seconds, longer than Azurite keeps an idle connection.
      for (const row of rows) {
        const content = await readStored(storage, row);
        assert.equal(content.kind, 'bytes');
        stored.set(row.raster!.variable, (content as { bytes: Uint8Array }).bytes);
      }
    } finally {
      await storage.close();
    }
    for (const [variable, tier, backend] of [['b04', 'hot', 's3'], ['b08', 'warm', 'gcs'], ['b11', 'cold', 'azure_blob']] as const) {
      const row = rows.find((r) => r.raster?.variable === variable)!;
      assert.equal(row.tier, tier);
      assert.equal(row.backend, backend);
      assert.equal(row.format, 'cog');
      assert.equal(row.codec, 'zstd');
      assert.match(row.key, new RegExp(`/sentinel2/${variable}/S2A_T33UUP_${variable}_20240301T103000Z\\.tif$`));
      const bytesOf = stored.get(variable)!;
      assert.equal(createHash('sha256').update(bytesOf).digest('hex'), row.sha256);
      const path = join(c.dir, `${variable}.tif`);
      writeRaw(path, bytesOf);
      const s = scenes.find((x) => x.variable === variable)!;
      await checkCog(path, s, writeRaw(join(c.dir, `${variable}.raw`), raws.get(variable)!), 'ZSTD', 2);
    }
    // The CLI: catalog ls --json lists the COGs with their raster fields.
    const listed = execFileSync('node', ['bin/earthmem.js', 'catalog', 'ls', c.file, '--json'], { env: process.env }).toString().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(listed.length, 3);
    for (const l of listed) {
      assert.equal(l.kind, 'raster');
      assert.equal(l.format, 'cog');
      assert.equal(l.epsg, 32633);
      assert.equal(l.dtype, 'uint16');
      assert.equal(l.partial, false);
      assert.equal(l.nodata, 0);
      assert.equal(l.height, 933);
      assert.deepEqual((l.bbox_native as number[]).slice(0, 2), [500000, 5300000 - 9330]);
      assert.match(String(l.uri), /^(s3|gs|https?):\/\//);
    }
    // GDAL opens the COG straight from the tier (/vsis3/ against the local versitygw).
    const s3uri = rows.find((r) => r.backend === 's3')!.uri;
    const vsi = spawnSync('gdalinfo', [`/vsis3/${s3uri.replace(/^s3:\/\//, '')}`], {
      env: { ...process.env, AWS_S3_ENDPOINT: new URL(process.env.S3_ENDPOINT!).host, AWS_HTTPS: 'NO', AWS_VIRTUAL_HOSTING: 'FALSE' },
    });
    assert.equal(vsi.status, 0, vsi.stderr.toString());
    assert.match(vsi.stdout.toString(), /LAYOUT=COG/);
    // get --bbox on S3: a window by range reads, much less than the object; GDAL reads it as a COG of the right place.
    const s3row = rows.find((r) => r.backend === 's3')!;
    const out = join(c.dir, 'window.tif');
    const bbox = [501000, 5297500, 502600, 5298700]; // x 100–260, y 130–250 in pixels
    const got = spawnSync('node', ['bin/earthmem.js', 'get', c.file, s3row.key, '--bbox', bbox.join(','), '--out', out], { env: process.env });
    assert.equal(got.status, 0, got.stderr.toString());
    const m = /window 160 × 120 at \(100, 130\), \d+ bytes → .*; fetched (\d+) of (\d+) bytes/.exec(got.stderr.toString());
    assert.ok(m, got.stderr.toString());
    assert.equal(Number(m[2]), s3row.bytes);
    assert.ok(Number(m[1]) < s3row.bytes / 4, `fetched ${m[1]} of ${m[2]} bytes`);
    const [gdal] = gdalCheckCogs([{ path: out, cogBlocksize: 256 }]);
    assert.deepEqual(gdalProblems(gdal!), []);
    const check = spawnSync(referencePython(), ['-c', WINDOW_CHECK, out, join(c.dir, 'b04.raw'), String(scenes[0]!.width), '100', '130', '160', '120'], {});
    assert.equal(check.status, 0, check.stderr.toString());
    assert.equal(check.stdout.toString().trim(), 'ok 501000.0 5298700.0 32633');
    assert.equal(await lag(c.topic, c.group), 0);
  });
});

/** rasterio: the window file's pixels are the scene's (raw uint16) at the window, and its origin and CRS are right. */
const WINDOW_CHECK = `
import sys, numpy as np, rasterio
tif, raw, width, x, y, w, h = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
scene = np.fromfile(raw, dtype='<u2').reshape(-1, width)
with rasterio.open(tif) as ds:
    a = ds.read(1)
    assert a.shape == (h, w), a.shape
    assert np.array_equal(a, scene[y:y+h, x:x+w]), 'pixels differ'
    print('ok', ds.transform.c, ds.transform.f, ds.crs.to_epsg())
`;

describe('raster scenes survive kill -9 (a worker process, SIGKILL at a crash point, restarted)', () => {
  afterEach(killWorkers);
  const scene = UTM_SCENE();
  const { bytes } = scenePixels(scene);

  for (const point of ['raster.tile@8', 'raster.put']) {
    it(`killed at ${point}: the restart writes one complete COG, catalogued once, offsets committed`, async () => {
      const c = makeCase(`kill-${point.replace(/[^a-z0-9]/g, '')}`);
      await createTopic(c.topic, PARTITIONS);
      const tiles = await sceneTiles(scene, bytes, [200, 150], 17);
      await produceTiles(c.topic, tiles.map((t) => t.envelope), PARTITIONS);
      const first = startWorker(c.file, { EARTHMEM_FAILPOINT: point });
      const code = await first.exited;
      assert.equal(code, null, `killed by SIGKILL: ${first.output()}`);
      assert.equal(first.child.signalCode, 'SIGKILL');
      if (point === 'raster.put') {
        // The COG was durable, not catalogued: no row, and no offset committed.
        assert.equal((await catalogList(c)).length, 0);
      }
      const second = startWorker(c.file, {});
      await waitFor('the scene catalogued', async () => (await catalogList(c)).length === 1 && (await lag(c.topic, c.group)) === 0, 120_000);
      second.child.kill('SIGTERM');
      assert.equal(await second.exited, 0, second.output());
      const rows = await catalogList(c);
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.raster?.partial, false);
      assert.equal(rows[0]!.raster?.tiles, tiles.length);
      assert.equal(sha(rows[0]!.uri), rows[0]!.sha256);
      const [gdal] = gdalCheckCogs([{ path: rows[0]!.uri, cogBlocksize: 256 }]);
      assert.deepEqual(gdalProblems(gdal!), []);
    });
  }
});

/** Envelopes of several scenes mixed (a fixed permutation). */
function shuffledInterleave<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = (i * 7919 + 13) % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
