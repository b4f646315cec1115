import { retryOptions, withRetry, type RetryPolicy, type RetryReport } from '../core/retry.js';
import type { Catalog } from './catalog.js';

/**
 * The catalog with every call retried under its `retry` policy (retriable failures only: a
 * connection refused or cut, a serialization failure), reported as `catalog <type>` in the run
 * log. For jobs that make many catalog calls (a MigrationJob); the calls are idempotent, except
 * that a `switchTier` whose COMMIT answer was lost fails on its retry (the rows already moved),
 * which fails that step and leaves the move to a resume.
 */
export function retryingCatalog(catalog: Catalog, policy: RetryPolicy, report: RetryReport = {}): Catalog {
  const options = retryOptions(`catalog ${catalog.type}`, policy, report);
  return new Proxy(catalog, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || property === 'close') return value;
      return (...args: unknown[]) => withRetry(() => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args), options);
    },
  });
}
