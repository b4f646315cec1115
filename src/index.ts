/**
 * earth-memory as a library: `import { MemoryCodex } from 'earth-memory'`. The CLI (`earthmem`)
 * is built on the same pieces.
 */
export { MemoryCodex, type MemoryCodexOptions, type PipelineInput, type StorageConfig, type ValidationResult } from './codex/memory-codex.js';
export type { PipelineConfig, TierConfig, TierName, BackendConfig } from './pipeline/schema.js';
export type { RunOptions, RunSummary, PipelineStats } from './pipeline/run.js';
export type { StoredContent } from './pipeline/read.js';
export type { MigrationJobInput } from './aging/job.js';
export type { MigrationStatus, MigrationPlan, MigrationOptions } from './aging/migration.js';
export type { MigrationJobState, MigrationStepState } from './catalog/catalog.js';
export type { CatalogEntry, CatalogFilter, CatalogRow, ObjectState } from './catalog/catalog.js';
export type { ObservationRecord, PointRecord, VectorRecord, DeadLetterReason } from './core/record.js';
export type { ConfigIssue } from './core/errors.js';
export {
  EarthMemoryError,
  ConfigError,
  StorageError,
  NotFoundError,
  AccessDeniedError,
  ObjectLockedError,
  ArchivedObjectError,
  CatalogError,
  FencedError,
  MigrationError,
  EncodeError,
  SourceError,
  isRetriable,
} from './core/errors.js';
