import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfigText } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/core/errors.js';
import { migrationJobSchema, resolveTime } from '../../../src/aging/job.js';
import { Throttle } from '../../../src/aging/throttle.js';

const parse = (yaml: string) => parseConfigText(yaml, 'job.yaml', migrationJobSchema);
const issues = (yaml: string) => {
  try {
    parse(yaml);
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map((i) => `${i.path}: ${i.message}`);
    throw error;
  }
  return [];
};

describe('MigrationJob schema', () => {
  it('takes the spec example with its defaults, relative and absolute times', () => {
    const job = parse('source_tier: hot\ndestination_tier: warm\nselection_criteria:\n  last_accessed_before: 30 days ago\n  time_before: 2026-10-01T00:00:00Z\n  min_size: 100MB\n');
    assert.equal(job.validation, true);
    assert.equal(job.delete_after_migration, true);
    assert.equal(job.metadata_update, true);
    assert.equal(job.concurrency, 4);
    assert.equal(job.selection_criteria.min_size, 100e6);
    const now = Date.parse('2026-12-01T00:00:00Z');
    assert.equal(resolveTime(job.selection_criteria.last_accessed_before!, now), now - 30 * 86_400_000);
    assert.equal(resolveTime(job.selection_criteria.time_before!, now), Date.parse('2026-10-01T00:00:00Z'));
  });

  it('rejects what a run would: same tiers, unknown keys, impossible sizes, deletion without verification', () => {
    assert.deepEqual(issues('source_tier: hot\ndestination_tier: hot\n'), ['destination_tier: is the source_tier: a move needs two tiers (or compact:, to merge in place)']);
    assert.deepEqual(issues('source_tier: hot\ndestination_tier: attic\n'), ['destination_tier: expected one of "hot", "warm", "cold", "glacier"']);
    assert.deepEqual(issues('source_tier: hot\ndestination_tier: warm\nselection_criteria: { shiny: true }\n'), ['selection_criteria.shiny: unknown key']);
    assert.deepEqual(issues('source_tier: hot\ndestination_tier: warm\nselection_criteria: { min_size: 2GB, max_size: 1GB }\n'), [
      'selection_criteria.max_size: max_size is below min_size: nothing could be selected',
    ]);
    assert.match(issues('source_tier: hot\ndestination_tier: warm\nvalidation: false\n')[0]!, /^validation: must be true with delete_after_migration/);
    assert.match(issues('source_tier: hot\ndestination_tier: warm\nmetadata_update: false\n')[0]!, /^delete_after_migration: needs metadata_update: true/);
    assert.match(issues('source_tier: hot\ndestination_tier: warm\nselection_criteria: { created_before: next week }\n')[0]!, /expected an RFC 3339 time/);
  });
});

describe('Throttle', () => {
  it('holds a job to its bytes per second', async () => {
    const throttle = new Throttle(1_000_000);
    const started = Date.now();
    // It starts empty: 2.5 MB at 1 MB/s take 2.5 s (the last take leaves as soon as its budget is there).
    for (let i = 0; i < 25; i++) await throttle.take(100_000);
    const seconds = (Date.now() - started) / 1000;
    assert.ok(seconds >= 2.3 && seconds < 8, `${seconds} s for 2.5 MB at 1 MB/s`);
  });
});
