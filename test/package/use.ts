// A user's program against the published package (test/integration/package.test.ts compiles it
// with tsc, strict, and runs it): the typed StorageConfig, validation, a run, the catalog, a read.
import { ConfigError, MemoryCodex, type MigrationStatus, type PipelineInput, type RunSummary, type StorageConfig } from 'earth-memory';

const [input, out] = process.argv.slice(2) as [string, string];

const storage: StorageConfig = {
  tier_configs: {
    hot: {
      primary_backend: { type: 'local_file', base_path: `${out}/hot`, format: 'parquet', file_organization: 'year/month/dataset' },
      compression: { algorithm: 'zstd', level: 'low' },
    },
    warm: {
      primary_backend: { type: 'local_file', base_path: `${out}/warm` },
      compression: { algorithm: 'zstd', level: 'high' },
    },
  },
};

const pipeline: PipelineInput = {
  source: { type: 'file', path: input },
  classify: { rules: [{ match: { variable: 'temperature' }, memory_type: 'TemperatureMemory' }], default: 'ObservationMemory' },
  storage,
  catalog: { type: 'sqlite', path: `${out}/catalog.sqlite` },
  dead_letter: { type: 'local_file', path: `${out}/dead-letter.ndjson` },
};

// A wrong backend type is a value the types allow through a cast: validate() reports it by path.
const broken = new MemoryCodex({ ...pipeline, storage: { tier_configs: { hot: { primary_backend: { type: 'floppy' } } } } as unknown as StorageConfig });
const check = broken.validate();
const invalid = check.ok ? [] : check.issues.map((i) => `${i.path}: ${i.message}`);
try {
  await broken.run();
  throw new Error('an invalid pipeline ran');
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
}

const codex = new MemoryCodex(pipeline);
const validation = codex.validate();
if (!validation.ok) throw new Error(validation.message);
const summary: RunSummary = await codex.run();
const rows = await codex.listObjects({ tier: 'hot' });
const first = await codex.read(rows[0]!.key);
const firstBytes = first.kind === 'bytes' ? Buffer.from(first.bytes.subarray(0, 4)).toString('latin1') : '';
// The spec's codex.execute_migration(job) and get_migration_status(id), typed.
const moved: MigrationStatus = await codex.executeMigration({ id: 'hot-to-warm', source_tier: 'hot', destination_tier: 'warm', selection_criteria: { memory_types: ['TemperatureMemory'] } });
const status = await codex.getMigrationStatus('hot-to-warm');

process.stdout.write(
  JSON.stringify({
    invalid,
    written: summary.recordsWritten,
    deadLettered: summary.deadLettered,
    objects: summary.objects,
    listed: rows.length,
    rows: rows.reduce((n, r) => n + r.rows, 0),
    firstBytes,
    migration: { state: status.state, done: moved.objects_done, progress: status.progress_percentage },
    warm: (await codex.listObjects({ tier: 'warm' })).map((r) => r.memoryType),
  }),
);
