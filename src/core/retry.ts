import { isRetriable } from './errors.js';

export interface RetryOptions {
  /** Attempts after the first one. */
  retries: number;
  initialDelayMs: number;
  maxDelayMs: number;
  factor: number;
  /** Called before each wait; for logs. */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  signal?: AbortSignal;
}

export const defaultRetry: RetryOptions = { retries: 5, initialDelayMs: 100, maxDelayMs: 10_000, factor: 2 };

/**
 * Runs `operation`, retrying only errors that say they are retriable, with exponential backoff
 * and full jitter. The last error is rethrown as is.
 */
export async function withRetry<T>(operation: (attempt: number) => Promise<T>, options: Partial<RetryOptions> = {}): Promise<T> {
  const opts = { ...defaultRetry, ...options };
  for (let attempt = 0; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      if (attempt >= opts.retries || !isRetriable(error) || opts.signal?.aborted) throw error;
      const ceiling = Math.min(opts.maxDelayMs, opts.initialDelayMs * opts.factor ** attempt);
      const delayMs = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
      opts.onRetry?.(error, attempt + 1, delayMs);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}
