import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import type { Batch } from '../../../src/core/batch.js';
import { recordBbox, type ObservationRecord } from '../../../src/core/record.js';
import { GeoParquetEncoder } from '../../../src/encoders/parquet/geoparquet.js';
import { geometryWkb, pointWkb } from '../../../src/encoders/wkb.js';
import { parseRecord } from '../../../src/records/parse.js';
import { writeSample } from '../../../src/records/sample.js';
import { tempDir } from '../../support/fixtures.js';
import { checkGdal } from '../../support/python.js';

/** GDAL (≥ 3.8) reads our point and feature objects: geometry, extent, row count, CRS. */
describe('GeoParquet read by GDAL', () => {
  const dir = tempDir('gdal');
  const batches: Record<Batch['kind'], Batch> = {} as Record<Batch['kind'], Batch>;
  const paths: Record<Batch['kind'], string> = { point: join(dir, 'points.parquet'), vector: join(dir, 'features.parquet') };
  before(async () => {
    const input = join(dir, 'sample.ndjson');
    await writeSample(input, { points: 3_000, features: 1_000, badCopies: 0, seed: 11 });
    const records: ObservationRecord[] = [];
    readFileSync(input, 'utf8').split('\n').forEach((line, offset) => {
      if (line === '') return;
      const parsed = parseRecord(Buffer.from(line), { source: input, partition: 0, offset });
      assert.ok(parsed.ok, line);
      records.push(parsed.record);
    });
    for (const kind of ['point', 'vector'] as const) {
      const of = records.filter((r) => r.kind === kind);
      batches[kind] = { memoryType: 'ObservationMemory', tier: 'cold', dataset: 'sample', kind, partitionPath: 'p', records: of, bytes: 0, flushReason: 'rows' };
      const encoded = await new GeoParquetEncoder({ compression: { algorithm: 'zstd', level: 'high' }, rowGroupSize: 1024 }).encode(batches[kind]);
      writeFileSync(paths[kind], encoded.bytes);
    }
  });

  it('opens both with GDAL ≥ 3.8: geometry column and type, OGC:CRS84, row count, extent, each geometry', () => {
    const check = checkGdal([paths.point, paths.vector]);
    const [major, minor] = check.gdal.split('.').map(Number);
    assert.ok(major! > 3 || (major === 3 && minor! >= 8), `GDAL ${check.gdal}`);
    for (const [kind, file] of [['point', check.files[0]!], ['vector', check.files[1]!]] as const) {
      const batch = batches[kind];
      assert.equal(file.geometry_name, 'geometry');
      assert.equal(file.geometry_type, kind === 'point' ? 'Point' : 'Polygon');
      assert.match(file.crs, /AUTHORITY\["OGC","CRS84"\]\]$/);
      assert.equal(file.features, batch.records.length);
      assert.ok(!file.fields.includes('geometry'), 'geometry is the geometry column, not an attribute');
      const bbox = [Infinity, Infinity, -Infinity, -Infinity];
      const wkb = new Map<string, string>();
      for (const record of batch.records) {
        const [a, b, c, d] = recordBbox(record);
        bbox.splice(0, 4, Math.min(bbox[0]!, a), Math.min(bbox[1]!, b), Math.max(bbox[2]!, c), Math.max(bbox[3]!, d));
        let bytes: Uint8Array;
        if (record.kind === 'point') {
          bytes = new Uint8Array(21);
          pointWkb(new DataView(bytes.buffer), 0, record.lon, record.lat);
        } else bytes = geometryWkb(record.geometry);
        wkb.set(record.id!, Buffer.from(bytes).toString('hex'));
      }
      assert.deepEqual(file.total_bounds, bbox);
      assert.equal(file.rows.length, batch.records.length);
      for (const [id, geometry] of file.rows) assert.equal(geometry, wkb.get(id!), `${kind} ${id}`);
    }
  });
});
