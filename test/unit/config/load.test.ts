import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../src/core/errors.js';
import { parseConfigText } from '../../../src/config/load.js';
import { interpolate } from '../../../src/config/interpolate.js';
import { pipelineSchema } from '../../../src/pipeline/schema.js';

const demo = readFileSync('pipelines/demo.yaml', 'utf8');

function issuesOf(text: string, env: NodeJS.ProcessEnv = {}) {
  try {
    parseConfigText(text, 'p.yaml', pipelineSchema, env);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.issues;
  }
  assert.fail('expected a ConfigError');
}

describe('pipeline file loading', () => {
  it('loads the demo with defaults filled in', () => {
    const config = parseConfigText(demo, 'demo.yaml', pipelineSchema, {});
    assert.equal(config.source.type, 'file');
    const hot = config.storage.tier_configs.hot?.primary_backend;
    assert.equal(hot?.type === 'local_file' && hot.base_path, 'data/demo/hot');
    assert.equal(config.batch.max_age, 30_000);
    assert.equal(config.source.max_record_bytes, 64 * 1024);
  });

  it('interpolates ${VAR} and ${VAR:-default}, typing unquoted values', () => {
    assert.deepEqual(interpolate('a${X}b${Y:-z}', { X: '1' }), { value: 'a1bz', missing: [], substituted: true });
    assert.deepEqual(interpolate('$${X}', {}).value, '${X}');
    const text = demo.replace('max_rows: 50000', 'max_rows: ${ROWS}');
    assert.equal(parseConfigText(text, 'p.yaml', pipelineSchema, { ROWS: '7' }).batch.max_rows, 7);
  });

  it('names the file, key path, line and expectation for unknown keys, wrong types and enums', () => {
    const text = demo
      .replace('max_rows: 50000', 'max_rows: many\n  flush_size: 3')
      .replace('algorithm: lz4', 'algorithm: lzma');
    const issues = issuesOf(text);
    const byPath = new Map(issues.map((i) => [i.path, i]));
    assert.match(byPath.get('batch.max_rows')!.message, /expected number, got string/);
    assert.equal(byPath.get('batch.flush_size')!.message, 'unknown key');
    assert.match(byPath.get('storage.tier_configs.warm.compression.algorithm')!.message, /expected one of "zstd"/);
    assert.ok(issues.every((i) => i.file === 'p.yaml' && typeof i.line === 'number'));
  });

  it('reports a missing environment variable without printing any value', () => {
    const issues = issuesOf(demo.replace('${EARTHMEM_DEMO_INPUT:-data/demo/observations.ndjson}', '${SECRET_PATH}'), { OTHER: 's3cr3t' });
    assert.equal(issues.length, 1);
    assert.equal(issues[0]!.path, 'source.path');
    assert.match(issues[0]!.message, /SECRET_PATH is not set/);
  });

  it('checks that routed tiers exist and templates compile', () => {
    const issues = issuesOf(demo.replace('HazardMemory: cold', 'HazardMemory: glacier').replace('sensor/year/month', 'planet/year'));
    const paths = issues.map((i) => i.path).sort();
    assert.deepEqual(paths, ['routing.memory_types.HazardMemory', 'storage.tier_configs.warm.primary_backend.file_organization']);
  });
});
