/**
 * The format keys of object backends and the storage's default formats, checked against the
 * format registry at load time: what resolves to what, and each wrong combination's message.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { ConfigError } from '../../../src/core/errors.js';
import { parseConfigText } from '../../../src/config/load.js';
import { pipelineSchema, resolvedFormats } from '../../../src/pipeline/schema.js';

function pipeline(storage: Record<string, unknown>, backend: Record<string, unknown>, tier: Record<string, unknown> = {}): string {
  return stringify({
    source: { type: 'file', path: 'in.ndjson' },
    // Every kind reaches hot: a format is checked for the kinds that can arrive.
    classify: { default: 'ObservationMemory' },
    storage: { ...storage, tier_configs: { hot: { primary_backend: { type: 'local_file', base_path: 'out', ...backend }, ...tier } } },
    catalog: { type: 'sqlite', path: 'c.sqlite' },
    dead_letter: { type: 'local_file', path: 'dl.ndjson' },
  });
}
const load = (text: string) => parseConfigText(text, 'p.yaml', pipelineSchema, {});
function issues(text: string): string[] {
  try {
    load(text);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.issues.map((i) => `${i.path}: ${i.message}`);
  }
  return assert.fail('expected a ConfigError');
}

describe('formats and default formats in the pipeline file', () => {
  it('resolves per kind: the backend\'s format, else the storage default (points are time series)', () => {
    assert.deepEqual(resolvedFormats(load(pipeline({}, {}))), [
      'hot point: parquet (storage.default_timeseries_format)',
      'hot vector: parquet (storage.default_vector_format)',
    ]);
    const dev = load(pipeline({ default_vector_format: 'geojson', default_timeseries_format: 'csv', default_raster_format: 'tiff' }, {}, { raster_backend: { type: 'local_file', base_path: 'r' } }));
    assert.deepEqual(resolvedFormats(dev), [
      'hot point: csv (storage.default_timeseries_format)',
      'hot vector: geojson (storage.default_vector_format)',
      // A raster_backend without `format` writes the default raster format.
      'hot raster: tiff (cog) (storage.default_raster_format)',
    ]);
    assert.deepEqual(resolvedFormats(load(pipeline({ default_vector_format: 'geojson' }, { format: 'geoparquet' }))), [
      'hot point: geoparquet (primary_backend.format)',
      'hot vector: geoparquet (primary_backend.format)',
    ]);
  });

  it('refuses vectors in CSV, at load time, with a way out', () => {
    assert.deepEqual(issues(pipeline({}, { format: 'csv' })), [
      'storage.tier_configs.hot.primary_backend.format: format csv does not store vector records (it stores point); vectors of this tier can go to a vector_backend with another format',
    ]);
    load(pipeline({}, { format: 'csv' }, { vector_backend: { type: 'local_file', base_path: 'v', format: 'geojson' } }));
    assert.deepEqual(issues(pipeline({ default_vector_format: 'csv' }, {})), [
      'storage.tier_configs.hot.primary_backend.format: vector records get storage.default_vector_format (csv): format csv does not store vector records (it stores point)',
    ]);
  });

  it('says when a format is not registered, and when a default names a database', () => {
    assert.deepEqual(issues(pipeline({}, { format: 'netcdf' })), [
      'storage.tier_configs.hot.primary_backend.format: format netcdf is not registered in this build; formats: parquet, geoparquet, geojson, zarr, cog, csv',
    ]);
    assert.deepEqual(issues(pipeline({ default_vector_format: 'postgis' }, {})), [
      'storage.tier_configs.hot.primary_backend.format: vector records get storage.default_vector_format (postgis): postgis is a database, not a file format: give the tier a vector_backend of type postgis, or name a file format',
    ]);
  });

  it('checks a format only for the kinds that can reach its tier', () => {
    const pointsOnly = (backend: Record<string, unknown>) =>
      pipeline({}, backend).replace("default: ObservationMemory", "rules: [{ match: { kind: point }, memory_type: StationMemory }]");
    load(pointsOnly({ format: 'csv' }));
    load(pointsOnly({ format: 'zarr' }));
    assert.equal(issues(pipeline({}, { format: 'zarr' })).length, 1);
  });

  it('takes each format\'s own keys and refuses the others\'', () => {
    load(pipeline({}, { format: 'geojson', organization: 'category/subcategory', compression: 'gzip', validation: true, layout: 'text_sequence' }));
    load(pipeline({}, { format: 'parquet', partition_cols: ['year', 'variable'], compression: 'snappy', row_group_size: 10000, page_size: 8192 }));
    load(pipeline({}, { format: 'csv', compression: 'gzip' }, { vector_backend: { type: 'local_file', base_path: 'v', format: 'geojson' } }));
    assert.deepEqual(issues(pipeline({}, { format: 'geojson', partition_cols: ['year'], compression: 'zstd' })), [
      'storage.tier_configs.hot.primary_backend.partition_cols: format geojson does not take partition_cols',
      'storage.tier_configs.hot.primary_backend.compression: geojson is compressed as a whole file: gzip or none',
    ]);
    assert.deepEqual(issues(pipeline({}, { format: 'parquet', layout: 'text_sequence', validation: false })), [
      'storage.tier_configs.hot.primary_backend.validation: format parquet does not take validation',
      'storage.tier_configs.hot.primary_backend.layout: format parquet does not take layout',
    ]);
    assert.deepEqual(issues(pipeline({}, { file_organization: 'year/month/dataset', organization: 'category/subcategory' })), [
      'storage.tier_configs.hot.primary_backend.organization: is another name for file_organization: give one of them',
    ]);
    assert.deepEqual(issues(pipeline({}, { format: 'parquet', partition_cols: ['colour'] })).length, 1);
  });

  it('record backends take no format', () => {
    const text = stringify({
      source: { type: 'file', path: 'in.ndjson' },
      storage: { tier_configs: { hot: { primary_backend: { type: 'mongodb', connection_string: 'mongodb://127.0.0.1:1/x', format: 'geojson' } } } },
      catalog: { type: 'sqlite', path: 'c.sqlite' },
      dead_letter: { type: 'local_file', path: 'dl.ndjson' },
    });
    assert.deepEqual(issues(text), ['storage.tier_configs.hot.primary_backend.format: mongodb keeps rows, not files: format does not apply']);
  });
});
