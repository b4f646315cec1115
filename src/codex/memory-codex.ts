import type { z } from 'zod';
import { ConfigError, type ConfigIssue } from '../core/errors.js';
import { loadConfigFile, parseConfigValue } from '../config/load.js';
import type { CatalogFilter, CatalogRow } from '../catalog/catalog.js';
import { createCatalog } from '../pipeline/connectors.js';
import { findRow, openStorage, readStored, type StoredContent } from '../pipeline/read.js';
import { runPipeline, type RunOptions, type RunSummary } from '../pipeline/run.js';
import { pipelineSchema, type PipelineConfig } from '../pipeline/schema.js';
import { migrationJobSchema, type MigrationJobInput } from '../aging/job.js';
import {
  cancelMigration, executeMigration, migrationStatus, planMigration, type MigrationOptions, type MigrationPlan, type MigrationStatus,
} from '../aging/migration.js';
import { MigrationError } from '../core/errors.js';

/** A pipeline as a value: the keys of a pipeline file (snake_case, as in the spec and the YAML). */
export type PipelineInput = z.input<typeof pipelineSchema>;
/** The spec's `StorageConfig`: `tier_configs` and the storage-wide options (the file's `storage:`). */
export type StorageConfig = PipelineInput['storage'];

export interface MemoryCodexOptions {
  /** For `${VAR}` interpolation; default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

export type ValidationResult = { ok: true; config: PipelineConfig } | { ok: false; issues: readonly ConfigIssue[]; message: string };

/**
 * The library entry point (the spec's `MemoryCodex(storage_config=…)`): a pipeline, from a file or
 * a typed value, that can be validated, run, and whose catalog can be read. Validation is the
 * pipeline file's own schema, so a value and a file fail with the same messages.
 */
export class MemoryCodex {
  /** Reads and validates the pipeline (once, on first use). */
  private parse: () => PipelineConfig;
  private parsed: PipelineConfig | undefined;
  /** Where `${VAR}` values and secrets (the encryption key) come from. */
  private readonly env: NodeJS.ProcessEnv;

  /** From a pipeline value, e.g. `new MemoryCodex({ source, storage: storageConfig, catalog, dead_letter })`. */
  constructor(pipeline: PipelineInput, options: MemoryCodexOptions = {}) {
    this.env = options.env ?? process.env;
    this.parse = () => parseConfigValue(pipeline, 'MemoryCodex config', pipelineSchema, options.env ?? process.env);
  }

  /** From a pipeline file; errors name the file, line and key path, as `earthmem validate` does. */
  static fromFile(path: string, options: MemoryCodexOptions = {}): MemoryCodex {
    const codex = new MemoryCodex({} as PipelineInput, options);
    codex.parse = () => loadConfigFile(path, pipelineSchema, options.env ?? process.env).config;
    return codex;
  }

  /** Everything `earthmem validate` checks, as a value instead of an exception. */
  validate(): ValidationResult {
    try {
      return { ok: true, config: this.config };
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      return { ok: false, issues: error.issues, message: error.message };
    }
  }

  /** The validated pipeline with its defaults; throws ConfigError when it is invalid. */
  get config(): PipelineConfig {
    this.parsed ??= this.parse();
    return this.parsed;
  }

  /** Runs the pipeline until a bounded source is exhausted or `options.signal` asks it to drain. */
  run(options: RunOptions = {}): Promise<RunSummary> {
    return runPipeline(this.config, { env: this.env, ...options });
  }

  /** What is stored where: the catalog's rows, optionally filtered by key, tier, memory type, dataset. */
  async listObjects(filter: CatalogFilter = {}): Promise<CatalogRow[]> {
    const catalog = await createCatalog(this.config.catalog);
    try {
      return await catalog.list(filter);
    } finally {
      await catalog.close();
    }
  }

  /**
   * The spec's `codex.execute_migration(job)`: runs a MigrationJob (or resumes the job with the
   * same id) to its end and returns its status. The job has the job file's keys.
   */
  async executeMigration(job: MigrationJobInput, options: MigrationOptions = {}): Promise<MigrationStatus> {
    const spec = parseConfigValue(job, 'MigrationJob', migrationJobSchema);
    return this.withStorage((storage) => executeMigration(storage, spec, options));
  }

  /** What a job would move (`earthmem migrate --dry-run`), with the plan hash to execute exactly that. */
  async planMigration(job: MigrationJobInput, options: { now?: number } = {}): Promise<MigrationPlan> {
    const spec = parseConfigValue(job, 'MigrationJob', migrationJobSchema);
    return this.withStorage((storage) => planMigration(storage, spec, options.now));
  }

  /** The spec's `get_migration_status(id)`: state, progress by bytes, objects done and failed, errors. */
  async getMigrationStatus(id: string): Promise<MigrationStatus> {
    return this.withStorage(async (storage) => {
      const journal = await storage.catalog.migrationJob(id);
      if (journal === undefined) throw new MigrationError(`no migration job ${id} in the catalog`);
      return migrationStatus(journal);
    });
  }

  /** Stops a job: nothing more starts, unswitched copies are deleted. */
  async cancelMigration(id: string): Promise<MigrationStatus> {
    return this.withStorage((storage) => cancelMigration(storage, id));
  }

  private async withStorage<T>(use: (storage: Awaited<ReturnType<typeof openStorage>>) => Promise<T>): Promise<T> {
    const storage = await openStorage(this.config, this.env);
    try {
      return await use(storage);
    } finally {
      await storage.close();
    }
  }

  /** A stored object's bytes (decrypted), or a record store's rows, through its tier; counts as an access. */
  async read(key: string, options: { tier?: string } = {}): Promise<StoredContent> {
    return this.withStorage(async (storage) => readStored(storage, await findRow(storage, key, options.tier)));
  }
}
