/**
 * The raster tile envelope: round trips for every dtype, nodata and compression; each dead-letter
 * reason; bounded decompression; corruption never throws; the published schema is the one the
 * decoder interprets; the CRS inverse projections against GDAL's (PROJ) numbers.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { RASTER_DTYPES, type RasterDtype } from '../../../src/core/raster.js';
import { lonLatBounds, resolveCrs } from '../../../src/records/crs.js';
import { RASTER_TILE_SCHEMA } from '../../../src/records/raster-header.js';
import { DTYPE_BYTES, decodeRasterTile, encodeRasterTile, type RasterCompression, type RasterDecodeResult, type RasterTileHeader } from '../../../src/records/raster.js';
import { seededRandom } from '../../../src/records/sample.js';
import { gdalPython } from '../../support/cog.js';

const at = { source: 'tiles', partition: 3, offset: 42 };
const ARRAYS = {
  uint8: Uint8Array, int8: Int8Array, uint16: Uint16Array, int16: Int16Array,
  uint32: Uint32Array, int32: Int32Array, float32: Float32Array, float64: Float64Array,
} as const;

function header(extra: Partial<RasterTileHeader> = {}): RasterTileHeader {
  return {
    dataset: 'sentinel2', variable: 'ndvi', time: '2026-01-15T10:30:00.123456Z', crs: 32632,
    scene_id: 'S2A_T32TQM', scene_width: 1000, scene_height: 800,
    geotransform: [600000, 10, 0, 5000000, 0, -10], x: 512, y: 256, width: 7, height: 5, dtype: 'float32', nodata: null,
    ...extra,
  };
}

function pixelsFor(dtype: RasterDtype, count: number, seed = 1): Uint8Array {
  const random = seededRandom(seed);
  const bytes = new Uint8Array(count * DTYPE_BYTES[dtype]);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
  if (dtype.startsWith('float')) {
    // Random bits would make NaNs whose payloads are fine but unreadable in a diff; keep them finite.
    const view = new ARRAYS[dtype as 'float32' | 'float64'](bytes.buffer);
    for (let i = 0; i < view.length; i++) view[i] = (random() - 0.5) * 1e6;
  }
  return bytes;
}

const reason = (r: RasterDecodeResult) => ('record' in r ? 'ok' : r.deadLetter.reason);
const ok = (r: RasterDecodeResult) => {
  if (!('record' in r)) assert.fail(`dead letter ${r.deadLetter.reason}: ${r.deadLetter.message}`);
  return r.record;
};

/** An envelope with a header written by hand (keys the encoder's type would not allow). */
function raw(h: unknown, pixels: Uint8Array = new Uint8Array(0), prefix?: (b: Uint8Array) => void): Uint8Array {
  const json = Buffer.from(typeof h === 'string' ? h : JSON.stringify(h));
  const out = new Uint8Array(12 + json.length + pixels.length);
  out.set(Buffer.from('EMRT'));
  out[4] = 1;
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, 12);
  out.set(pixels, 12 + json.length);
  prefix?.(out);
  return out;
}

describe('raster tile envelope: round trips', () => {
  for (const dtype of RASTER_DTYPES) {
    const float = dtype.startsWith('float');
    const nodatas: (number | 'nan' | null)[] = float ? ['nan', -9999, null] : [dtype.startsWith('u') ? 0 : -1, null];
    for (const compression of ['none', 'zstd', 'deflate'] as RasterCompression[]) {
      it(`${dtype}, ${compression}, nodata ${nodatas.join('/')}`, async () => {
        for (const [i, nodata] of nodatas.entries()) {
          const bands = i + 1;
          const h = header({ dtype, nodata, bands });
          const pixels = pixelsFor(dtype, 7 * 5 * bands, i);
          const envelope = await encodeRasterTile(h, pixels, compression);
          assert.deepEqual([...envelope.subarray(0, 8)], [0x45, 0x4d, 0x52, 0x54, 1, 0, 0, 0]);
          const record = ok(await decodeRasterTile(envelope, at));
          assert.deepEqual(Buffer.from(record.pixels), Buffer.from(pixels));
          assert.equal(record.size, envelope.length);
          assert.deepEqual(record.position, at);
          assert.equal(record.scene.dtype, dtype);
          assert.equal(record.scene.bands, bands);
          if (nodata === 'nan') assert.ok(Number.isNaN(record.scene.nodata));
          else assert.equal(record.scene.nodata, nodata);
          assert.equal(record.timeUs, Date.parse('2026-01-15T10:30:00.123Z') * 1000 + 456);
          assert.deepEqual(record.bboxNative, [605120, 4997390, 605190, 4997440]);
          assert.equal(record.scene.epsg, 32632);
        }
      });
    }
  }

  it('bbox instead of geotransform: the geotransform comes from the outer edges', async () => {
    const h = header({ geotransform: undefined, bbox: [600000, 4992000, 610000, 5000000], crs: 'EPSG:32632', dtype: 'uint8' });
    const record = ok(await decodeRasterTile(await encodeRasterTile(h, new Uint8Array(35)), at));
    assert.deepEqual(record.scene.geotransform, [600000, 10, 0, 5000000, 0, -10]);
  });

  it('EPSG:4326 and 3857 tiles get their WGS 84 bbox; a WKT CRS resolves by its outer ID', async () => {
    const geo = ok(await decodeRasterTile(await encodeRasterTile(header({ crs: 4326, geotransform: [10, 0.01, 0, 50, 0, -0.01], dtype: 'uint8' }), new Uint8Array(35)), at));
    assert.deepEqual(geo.bbox.map((v) => +v.toFixed(9)), [15.12, 47.39, 15.19, 47.44]);
    const merc = ok(await decodeRasterTile(await encodeRasterTile(header({ crs: 3857, geotransform: [0, 1000, 0, 0, 0, -1000], x: 0, y: 0, width: 1, height: 1, dtype: 'uint8' }), new Uint8Array(1)), at));
    assert.ok(Math.abs(merc.bbox[2] - 0.008983152841195214) < 1e-12 && Math.abs(merc.bbox[1] + 0.008983152813) < 1e-9, String(merc.bbox));
    const wkt = 'PROJCS["WGS 84 / UTM zone 33S",GEOGCS["WGS 84",AUTHORITY["EPSG","4326"]],PROJECTION["Transverse_Mercator"],AUTHORITY["EPSG","32733"]]';
    const south = ok(await decodeRasterTile(await encodeRasterTile(header({ crs: wkt, geotransform: [500000, 10, 0, 10000000, 0, -10], dtype: 'uint8' }), new Uint8Array(35)), at));
    assert.equal(south.scene.epsg, 32733);
    assert.equal(south.scene.crs, wkt);
    assert.ok(south.bbox[3] < 0 && south.bbox[3] > -0.03 && Math.abs(south.bbox[0] - 15.046) < 0.01, String(south.bbox));
  });

  it('the zstd frame the encoder writes declares its content size (what the decoder bounds by)', async () => {
    const envelope = await encodeRasterTile(header({ dtype: 'uint8' }), new Uint8Array(35).fill(7), 'zstd');
    const body = envelope.subarray(12 + new DataView(envelope.buffer).getUint32(8, true));
    assert.deepEqual([...body.subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd]);
    assert.equal(body[4]! >> 6, 3);
    assert.equal(new DataView(body.buffer, body.byteOffset).getBigUint64(6, true), 35n);
  });
});

describe('raster tile envelope: dead letters', () => {
  const cases: [string, () => Promise<Uint8Array> | Uint8Array, string][] = [
    ['too short', () => new Uint8Array(5), 'bad_envelope'],
    ['wrong magic', () => raw(header(), new Uint8Array(0), (b) => (b[0] = 0x7b)), 'bad_envelope'],
    ['version 2', () => raw(header(), new Uint8Array(0), (b) => (b[4] = 2)), 'bad_envelope'],
    ['reserved byte set', () => raw(header(), new Uint8Array(0), (b) => (b[6] = 1)), 'bad_envelope'],
    ['header length past the end', () => raw(header(), new Uint8Array(0), (b) => new DataView(b.buffer).setUint32(8, 1e6, true)), 'bad_envelope'],
    ['header not JSON', () => raw('{"dataset":'), 'bad_envelope'],
    ['header not UTF-8', () => raw(Buffer.from([0x22, 0xff, 0x22]).toString('latin1')), 'bad_envelope'],
    ['header an array', () => raw([1]), 'bad_envelope'],
    ['unknown key', () => raw({ ...header(), colour: 'red' }), 'bad_envelope'],
    ['missing key', () => raw({ ...header(), scene_id: undefined }), 'missing_field'],
    ['width a string', () => raw({ ...header(), width: '7' }), 'wrong_type'],
    ['empty dataset', () => raw({ ...header(), dataset: '' }), 'wrong_type'],
    ['bad time', () => raw({ ...header(), time: '2026-13-01T00:00:00Z' }), 'bad_time'],
    ['dtype float16', () => raw({ ...header(), dtype: 'float16' }), 'bad_dtype'],
    ['pixels one byte short', () => encodeRasterTile(header(), new Uint8Array(7 * 5 * 4 - 1)), 'wrong_pixel_size'],
    ['pixels one byte long, deflated', () => encodeRasterTile(header(), new Uint8Array(7 * 5 * 4 + 1), 'deflate'), 'too_large'],
    ['pixels short, zstd', () => encodeRasterTile(header(), new Uint8Array(7 * 5 * 4 - 4), 'zstd'), 'wrong_pixel_size'],
    ['tile past the right edge', () => encodeRasterTile(header({ x: 995 }), new Uint8Array(140)), 'tile_outside_scene'],
    ['tile past the bottom edge', () => encodeRasterTile(header({ y: 796 }), new Uint8Array(140)), 'tile_outside_scene'],
    ['EPSG:2056', () => encodeRasterTile(header({ crs: 2056 }), new Uint8Array(140)), 'unknown_crs'],
    ['crs a boolean', () => raw({ ...header(), crs: true }), 'unknown_crs'],
    ['WKT without an ID', () => encodeRasterTile(header({ crs: 'PROJCS["x",GEOGCS["y"]]' }), new Uint8Array(140)), 'unknown_crs'],
    ['both geotransform and bbox', () => raw({ ...header(), bbox: [0, 0, 1, 1] }), 'bad_geotransform'],
    ['neither geotransform nor bbox', () => raw({ ...header(), geotransform: undefined }), 'bad_geotransform'],
    ['rotated', () => encodeRasterTile(header({ geotransform: [600000, 10, 1, 5000000, 0, -10] }), new Uint8Array(140)), 'bad_geotransform'],
    ['south-up', () => encodeRasterTile(header({ geotransform: [600000, 10, 0, 5000000, 0, 10] }), new Uint8Array(140)), 'bad_geotransform'],
    ['geotransform of 5', () => raw({ ...header(), geotransform: [1, 2, 3, 4, 5] }), 'bad_geotransform'],
    ['off the earth (4326, lat 700)', () => encodeRasterTile(header({ crs: 4326, geotransform: [0, 1, 0, 1000, 0, -1] }), new Uint8Array(140)), 'bad_geotransform'],
    ['compression lz4', () => raw({ ...header(), compression: 'lz4' }), 'bad_compression'],
    ['deflate that is not', () => raw({ ...header(), compression: 'deflate' }, new Uint8Array(140).fill(3)), 'bad_compression'],
    ['zstd that is not', () => raw({ ...header(), compression: 'zstd' }, new Uint8Array(140).fill(3)), 'bad_compression'],
    ['nodata 300 for uint8', () => encodeRasterTile(header({ dtype: 'uint8', nodata: 300 }), new Uint8Array(35)), 'bad_nodata'],
    ['nodata nan for int16', () => encodeRasterTile(header({ dtype: 'int16', nodata: 'nan' }), new Uint8Array(70)), 'bad_nodata'],
    ['nodata 0.1 for float32', () => encodeRasterTile(header({ nodata: 0.1 }), new Uint8Array(140)), 'bad_nodata'],
    ['nodata "NaN" spelled otherwise', () => raw({ ...header(), nodata: 'NaN' }), 'bad_nodata'],
  ];
  for (const [name, make, expected] of cases) {
    it(`${name} → ${expected}`, async () => {
      const payload = await make();
      const result = await decodeRasterTile(payload, at);
      assert.equal(reason(result), expected, 'deadLetter' in result ? result.deadLetter.message : '');
      if ('deadLetter' in result) {
        assert.equal(result.deadLetter.payload, payload);
        assert.deepEqual(result.deadLetter.position, at);
        assert.ok(result.deadLetter.message.length > 0);
      }
    });
  }

  it('over max_tile_bytes → too_large, before decompressing', async () => {
    const payload = await encodeRasterTile(header(), new Uint8Array(140));
    assert.equal(reason(await decodeRasterTile(payload, at, { maxTileBytes: 139 })), 'too_large');
  });

  it('a deflate bomb stops at the declared size', async () => {
    const bomb = await promisify(zlib.deflate)(Buffer.alloc(200 << 20));
    const payload = raw({ ...header({ dtype: 'uint8', width: 100, height: 100, x: 0, y: 0 }), compression: 'deflate' }, bomb);
    const before = process.memoryUsage().rss;
    const result = await decodeRasterTile(payload, at);
    assert.equal(reason(result), 'too_large');
    assert.ok(process.memoryUsage().rss - before < 100 << 20, 'inflated far past the declared size');
  });

  it('a zstd frame that lies about its content size is refused by the decoder, not inflated', async () => {
    const honest = await encodeRasterTile(header({ dtype: 'uint8', width: 1000, height: 800, x: 0, y: 0 }), new Uint8Array(800_000), 'zstd');
    const body = new Uint8Array(honest.subarray(12 + new DataView(honest.buffer).getUint32(8, true)));
    new DataView(body.buffer).setBigUint64(6, 35n, true); // claims the 7 × 5 uint8 tile's size
    const result = await decodeRasterTile(raw({ ...header({ dtype: 'uint8' }), compression: 'zstd' }, body), at);
    assert.equal(reason(result), 'bad_compression');
  });

  it('a zstd body with a second frame after the first is refused', async () => {
    const one = await encodeRasterTile(header({ dtype: 'uint8' }), new Uint8Array(35), 'zstd');
    const body = one.subarray(12 + new DataView(one.buffer).getUint32(8, true));
    const result = await decodeRasterTile(raw({ ...header({ dtype: 'uint8' }), compression: 'zstd' }, Buffer.concat([body, body])), at);
    assert.equal(reason(result), 'bad_compression');
  });
});

describe('raster tile envelope: corruption (property)', () => {
  const valid = Promise.all(
    (['none', 'zstd', 'deflate'] as const).flatMap((c) =>
      (['uint8', 'int16', 'float32', 'float64'] as const).map((dtype) => encodeRasterTile(header({ dtype, nodata: null }), pixelsFor(dtype, 35), c)),
    ),
  );

  it('a truncated envelope is always a dead letter with a reason and its bytes', async () => {
    const envelopes = await valid;
    await fc.assert(
      fc.asyncProperty(fc.nat(envelopes.length - 1), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), async (which, fraction) => {
        const full = envelopes[which]!;
        const cut = full.slice(0, Math.floor(full.length * fraction));
        const result = await decodeRasterTile(cut, at);
        assert.ok('deadLetter' in result, `a ${cut.length}-byte prefix of ${full.length} decoded`);
        assert.equal(result.deadLetter.payload, cut);
        assert.match(result.deadLetter.reason, /^[a-z_]+$/);
      }),
      { numRuns: 300, seed: 13 },
    );
  });

  it('random byte changes never throw: a dead letter keeps the bytes, a record has the declared pixel size', async () => {
    const envelopes = await valid;
    await fc.assert(
      fc.asyncProperty(
        fc.nat(envelopes.length - 1),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        async (which, edits) => {
          const payload = new Uint8Array(envelopes[which]!);
          for (const [where, value] of edits) payload[where % payload.length] = value;
          const result = await decodeRasterTile(payload, at);
          if ('deadLetter' in result) {
            assert.equal(result.deadLetter.payload, payload);
            assert.ok(result.deadLetter.message.length > 0);
          } else {
            const r = result.record;
            assert.equal(r.pixels.length, r.width * r.height * r.scene.bands * DTYPE_BYTES[r.scene.dtype]);
          }
        },
      ),
      { numRuns: 1000, seed: 7 },
    );
  });
});

describe('raster tile schema', () => {
  it('src/records/schemas/raster-tile.schema.json is the definition the decoder validates with', () => {
    const published = JSON.parse(readFileSync(resolve('src/records/schemas/raster-tile.schema.json'), 'utf8'));
    assert.deepEqual(published, JSON.parse(JSON.stringify(RASTER_TILE_SCHEMA)));
  });
});

describe('CRS to WGS 84, against GDAL/PROJ', () => {
  it('UTM north and south, zones 1, 32, 33, 60, and 3857: within 1e-9 degrees', () => {
    const random = seededRandom(5);
    const cases: { epsg: number; points: [number, number][] }[] = [];
    for (const epsg of [32601, 32632, 32660, 32733, 32760, 32720]) {
      const south = epsg > 32700;
      const points: [number, number][] = [];
      for (let i = 0; i < 50; i++) points.push([100000 + random() * 800000, south ? 1100000 + random() * 8899999 : random() * 9300000]);
      cases.push({ epsg, points });
    }
    cases.push({ epsg: 3857, points: Array.from({ length: 50 }, () => [(random() - 0.5) * 4e7, (random() - 0.5) * 4e7] as [number, number]) });
    const script = [
      'import json, sys',
      'from osgeo import osr',
      'out = []',
      'for case in json.load(sys.stdin):',
      '    s = osr.SpatialReference(); s.ImportFromEPSG(case["epsg"]); s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)',
      '    t = osr.SpatialReference(); t.ImportFromEPSG(4326); t.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)',
      '    ct = osr.CoordinateTransformation(s, t)',
      '    out.append([list(ct.TransformPoint(x, y)[:2]) for x, y in case["points"]])',
      'print(json.dumps(out))',
    ].join('\n');
    const expected = JSON.parse(execFileSync(gdalPython(), ['-c', script], { input: JSON.stringify(cases) }).toString()) as [number, number][][];
    let worst = 0;
    cases.forEach((c, i) => {
      const crs = resolveCrs(c.epsg);
      c.points.forEach(([x, y], j) => {
        const [lon, lat] = crs.toLonLat(x, y);
        const [elon, elat] = expected[i]![j]!;
        // The same meridian may come out as -180.x or 179.x: compare longitudes modulo 360.
        const dlon = Math.abs(((lon - elon + 540) % 360) - 180);
        worst = Math.max(worst, dlon, Math.abs(lat - elat));
      });
    });
    assert.ok(worst < 1e-9, `worst difference ${worst} degrees`);
  });

  it("a UTM tile's bbox bounds its curved edges", () => {
    const crs = resolveCrs(32632);
    const [minLon, , maxLon, maxLat] = lonLatBounds(crs, [300000, 6000000, 700000, 7000000]);
    // The top edge bulges north between its corners; the corners alone would miss it.
    assert.ok(maxLat > crs.toLonLat(300000, 7000000)[1]);
    assert.ok(minLon < 6 && maxLon > 12);
  });
});

describe('raster-tile.md', () => {
  it('the worked example decodes to what the spec says', async () => {
    const md = readFileSync(resolve('src/records/schemas/raster-tile.md'), 'utf8');
    const dump = md.split('## Worked example')[1]!.split('```')[1]!;
    const bytes = Buffer.from(dump.trim().split('\n').map((line) => line.slice(5, 52).replace(/ /g, '')).join(''), 'hex');
    assert.equal(bytes.length, 256);
    const record = ok(await decodeRasterTile(bytes, at));
    assert.deepEqual([...new Uint16Array(new Uint8Array(record.pixels).buffer)], [1, 258]);
    assert.deepEqual(record.bbox, [10, 49.5, 11, 50]);
  });

  it('an envelope a Python producer writes by the spec (struct + zlib) decodes', async () => {
    const script = [
      'import json, struct, sys, zlib',
      'h = json.dumps({"dataset": "d", "variable": "v", "time": "2026-01-15T10:30:00+01:00", "crs": "EPSG:3857", "scene_id": "s",',
      '  "scene_width": 3, "scene_height": 2, "bbox": [0, 0, 300, 200], "x": 0, "y": 0, "width": 3, "height": 2, "dtype": "float64",',
      '  "nodata": "nan", "compression": "deflate"}).encode()',
      'pixels = struct.pack("<6d", 1.5, 2.5, float("nan"), -4, 5, 6)',
      'sys.stdout.buffer.write(struct.pack("<4sB3xI", b"EMRT", 1, len(h)) + h + zlib.compress(pixels))',
    ].join('\n');
    const bytes = execFileSync(gdalPython(), ['-c', script]);
    const record = ok(await decodeRasterTile(new Uint8Array(bytes), at));
    assert.deepEqual([...new Float64Array(new Uint8Array(record.pixels).buffer)], [1.5, 2.5, NaN, -4, 5, 6]);
    assert.deepEqual(record.scene.geotransform, [0, 100, 0, 200, 0, -100]);
    assert.equal(record.timeUs, Date.parse('2026-01-15T09:30:00Z') * 1000);
  });
});
