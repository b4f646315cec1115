import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfigValue } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/core/errors.js';
import { cogLayoutOf, pipelineSchema, rasterRoleOf } from '../../../src/pipeline/schema.js';

const base = (hot: Record<string, unknown>, rules: unknown[] = [{ match: { kind: 'raster' }, memory_type: 'SatelliteMemory' }]) => ({
  source: { type: 'file', path: 'in.ndjson' },
  classify: { rules },
  storage: { tier_configs: { hot } },
  catalog: { type: 'sqlite', path: 'c.sqlite' },
  dead_letter: { type: 'local_file', path: 'dl.ndjson' },
});

function issues(value: unknown): string[] {
  try {
    parseConfigValue(value, 'p.yaml', pipelineSchema);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.issues.map((i) => `${i.path}: ${i.message}`);
  }
  return [];
}

describe('raster routing in the pipeline file (earthmem validate)', () => {
  it('format: cog on an object store takes the COG keys and organization; type: cog has the spec defaults', () => {
    const config = parseConfigValue(
      base({ primary_backend: { type: 'local_file', base_path: 'hot', format: 'cloud-optimized-geotiff', organization: '{dataset}/{year}', compression: 'ZSTD', level: 15, blocksize: [512, 256], predictor: 3, overviews: 3 } }),
      'p.yaml',
      pipelineSchema,
    );
    const hot = config.storage.tier_configs.hot!;
    assert.equal(rasterRoleOf(hot), 'primary_backend');
    assert.deepEqual(cogLayoutOf(hot.primary_backend), {
      organization: '{dataset}/{year}',
      options: { overviews: 3, compression: 'ZSTD', blocksize: [512, 256], predictor: 3, overview_resampling: 'average', level: 15 },
    });
    const spec = parseConfigValue(base({ primary_backend: { type: 'local_file', base_path: 'hot' }, raster_backend: { type: 'cog', base_path: 'cogs' } }), 'p.yaml', pipelineSchema);
    const tier = spec.storage.tier_configs.hot!;
    assert.equal(rasterRoleOf(tier), 'raster_backend');
    assert.deepEqual(cogLayoutOf(tier.raster_backend!), {
      organization: 'sensor/year/month',
      options: { overviews: true, compression: 'DEFLATE', blocksize: [256, 256], predictor: 2, overview_resampling: 'average', level: 6 },
    });
  });

  it('refuses a raster rule whose tier cannot write COGs, COG keys on parquet, bad COG values, a record store as raster_backend', () => {
    assert.deepEqual(issues(base({ primary_backend: { type: 'local_file', base_path: 'hot' } })), [
      'classify.rules.0.memory_type: routes raster records to tier hot, which has no raster_backend and whose primary_backend (local_file) writes neither COGs nor Zarr',
    ]);
    assert.deepEqual(issues(base({ primary_backend: { type: 'local_file', base_path: 'hot', compression: 'ZSTD', blocksize: 512 } }, [])), [
      'storage.tier_configs.hot.primary_backend.blocksize: is a COG key: it needs format: cog',
      'storage.tier_configs.hot.primary_backend.compression: format parquet compresses with zstd, lz4, gzip, snappy, brotli, none, not ZSTD',
    ]);
    assert.deepEqual(issues(base({ primary_backend: { type: 'local_file', base_path: 'hot', format: 'cog', blocksize: 100 } })), [
      'storage.tier_configs.hot.primary_backend.blocksize: expected a multiple of 16 (TIFF tiles)',
    ]);
    assert.deepEqual(issues(base({ primary_backend: { type: 's3', bucket: 'b', region: 'us-east-1', format: 'cog', compression: 'LZW', level: 3 } })), [
      'storage.tier_configs.hot.primary_backend.level: LZW has no level',
    ]);
    assert.deepEqual(issues(base({ primary_backend: { type: 'local_file', base_path: 'hot' }, raster_backend: { type: 'sqlite', database_path: 'x.sqlite' } })), [
      'storage.tier_configs.hot.raster_backend.type: sqlite cannot keep raster scenes; a raster_backend is one of local_file, s3, gcs, azure_blob, cog, zarr',
    ]);
    assert.deepEqual(issues(base({ primary_backend: { type: 'local_file', base_path: 'hot', format: 'cog', organization: 'dataset', file_organization: 'year/month/day' } })), [
      'storage.tier_configs.hot.primary_backend.organization: is another name for file_organization: give one of them',
    ]);
    assert.ok(issues(base({ primary_backend: { type: 'local_file', base_path: 'hot', format: 'cog', organization: '{nope}' } }))[0]!.startsWith('storage.tier_configs.hot.primary_backend.organization: unknown token {nope}'));
  });

  it('a Zarr primary_backend or raster_backend keeps raster records; a raster_backend of another format is refused', () => {
    const zarrPrimary = parseConfigValue(base({ primary_backend: { type: 'zarr', store_path: 'z', file_organization: '{dataset}/{year}', time_step: '1d' } }), 'p.yaml', pipelineSchema);
    assert.equal(rasterRoleOf(zarrPrimary.storage.tier_configs.hot!), 'primary_backend');
    const zarrRaster = parseConfigValue(
      base({ primary_backend: { type: 'local_file', base_path: 'hot' }, raster_backend: { type: 's3', bucket: 'b', region: 'us-east-1', format: 'zarr', chunks: [1, 256, 256] } }),
      'p.yaml',
      pipelineSchema,
    );
    assert.equal(rasterRoleOf(zarrRaster.storage.tier_configs.hot!), 'raster_backend');
    assert.deepEqual(issues(base({ primary_backend: { type: 'local_file', base_path: 'hot' }, raster_backend: { type: 'local_file', base_path: 'r', format: 'geojson' } })), [
      'storage.tier_configs.hot.raster_backend.format: a raster_backend writes COGs (format cog, or leave it out) or Zarr (format zarr), not geojson',
    ]);
  });
});
