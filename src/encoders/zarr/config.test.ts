import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../core/errors.js';
import { parseConfigText } from '../../config/load.js';
import { zarrOptions } from '../../config/zarr.js';
import { pipelineSchema } from '../../pipeline/schema.js';

const pipeline = (backend: string) => `source: { type: file, path: in.ndjson }
storage: { tier_configs: { warm: { primary_backend: ${backend}${/zarr/.test(backend) && !/vector_backend/.test(backend) ? ', vector_backend: { type: local_file, base_path: /tmp/v }' : ''} } } }
routing: { default: warm }
catalog: { type: sqlite, path: c.sqlite }
dead_letter: { type: local_file, path: d.ndjson }
`;

function issues(backend: string): string[] {
  try {
    parseConfigText(pipeline(backend), 'p.yaml', pipelineSchema, {});
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.issues.map((i) => `${i.path}: ${i.message}`);
  }
  return [];
}

describe('Zarr keys in a pipeline file', () => {
  it('refuses features routed to a Zarr tier without a vector_backend', () => {
    const text = pipeline('{ type: zarr, store_path: /tmp/z }').replace(', vector_backend: { type: local_file, base_path: /tmp/v }', '').replace('routing:', 'classify: { rules: [{ match: { kind: vector }, memory_type: HazardMemory }] }\nrouting:');
    try {
      parseConfigText(text, 'p.yaml', pipelineSchema, {});
      assert.fail('expected a ConfigError');
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      assert.ok(error.issues.some((i) => /warm\.primary_backend\.format/.test(i.path) && /zarr does not store vector records.*vector_backend/.test(i.message)), JSON.stringify(error.issues));
    }
    parseConfigText(text.replace('{ type: zarr, store_path: /tmp/z }', '{ type: zarr, store_path: /tmp/z }, vector_backend: { type: local_file, base_path: /tmp/v }'), 'p.yaml', pipelineSchema, {});
  });

  it('type: zarr and format: zarr take the spec\'s ZarrStorage keys, with its defaults', () => {
    const config = parseConfigText(pipeline('{ type: zarr, store_path: /tmp/z, chunks: [1, 256, 256], compression: gzip, compression_level: 6, dimension_separator: "." }'), 'p.yaml', pipelineSchema, {});
    const b = config.storage.tier_configs.warm!.primary_backend;
    assert.equal(b.type, 'zarr');
    assert.deepEqual(zarrOptions(b as Parameters<typeof zarrOptions>[0]), {
      zarrFormat: 2, chunks: [1, 256, 256], timeseriesChunks: [64, 1024], compression: 'gzip', compressionLevel: 6, dimensionSeparator: '.', timeStepMs: 3_600_000,
    });
    assert.deepEqual(issues('{ type: s3, bucket: b, region: r, format: zarr, zarr_format: 3 }'), []);
    assert.deepEqual(zarrOptions({}), { zarrFormat: 2, chunks: [1, 500, 500], timeseriesChunks: [64, 1024], compression: 'zstd', compressionLevel: 3, dimensionSeparator: '/', timeStepMs: 3_600_000 });
  });

  it('refuses Zarr keys without format: zarr, lz4 in v3, bad levels, layouts without a time token, unknown keys', () => {
    const cases: [string, RegExp][] = [
      ['{ type: local_file, base_path: /tmp/x, chunks: [1, 2, 3] }', /primary_backend\.chunks: chunks is a Zarr key: it needs format: zarr/],
      ['{ type: zarr, store_path: /tmp/z, compression: blosc, compression_level: 10 }', /compression_level: blosc levels are 0–9/],
      ['{ type: local_file, base_path: /tmp/z, format: zarr, compression: snappy }', /compressed with zstd \(the default\), gzip, lz4, blosc or none, not snappy/],
      ['{ type: zarr, store_path: /tmp/z, compression: lz4, zarr_format: 3 }', /lz4 has no Zarr v3 codec/],
      ['{ type: zarr, store_path: /tmp/z, compression: gzip, compression_level: 12 }', /compression_level: gzip levels are 0–9/],
      ['{ type: zarr, store_path: /tmp/z, file_organization: "{dataset}" }', /file_organization: format: zarr needs a time token/],
      ['{ type: zarr, store_path: /tmp/z, dimension_separator: "-" }', /dimension_separator/],
      ['{ type: zarr, store_path: /tmp/z, zarr_format: 4 }', /zarr_format/],
      ['{ type: zarr, store_path: /tmp/z, chunk: [1, 2, 3] }', /chunk/],
      ['{ type: redis, url: "redis://127.0.0.1:16379", format: zarr }', /format: zarr is stored on local_file, s3, gcs or azure_blob/],
    ];
    for (const [backend, expected] of cases) {
      const got = issues(backend);
      assert.ok(got.some((m) => expected.test(m)), `${backend}: ${got.join(' | ')}`);
    }
  });
});
