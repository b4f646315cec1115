import { describeError, isRetriable } from './errors.js';

/**
 * How a connector's calls are retried (its config's `retry:` key): backoff doubles from
 * `initialBackoffMs` up to `maxBackoffMs`, with jitter, and attempts stop once `maxElapsedMs` has
 * passed since the first attempt. Time-bounded, not count-bounded: an outage is ridden out for
 * as long as the operator said, whatever the backoff.
 */
export interface RetryPolicy {
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** 0: no retry. */
  maxElapsedMs: number;
}

/** The config's `retry: {initial_backoff, max_backoff, max_elapsed}`, in milliseconds (src/config/common.ts). */
export interface RetryConfig {
  initial_backoff: number;
  max_backoff: number;
  max_elapsed: number;
}

export function retryPolicyOf(config: RetryConfig): RetryPolicy {
  return { initialBackoffMs: config.initial_backoff, maxBackoffMs: config.max_backoff, maxElapsedMs: config.max_elapsed };
}

/** What withRetry tells its caller (for logs); RetryNotices makes them run-log lines. */
export interface RetryListener {
  /** Called before each wait: the attempt that failed (1 = the first), the wait, the time since the first attempt. */
  onRetry?: (error: unknown, attempt: number, delayMs: number, elapsedMs: number) => void;
  /** An attempt succeeded after `failures` failed ones. */
  onRecovered?: (failures: number, elapsedMs: number) => void;
  /**
   * A retriable error is thrown because max_elapsed has passed, or because the signal aborted
   * (`reason`: its abort reason when that is a string, else `aborted`). Not called for errors
   * that are not retriable.
   */
  onGiveUp?: (error: unknown, attempts: number, elapsedMs: number, reason: GiveUpReason) => void;
}

/** Why retrying stopped: `max_elapsed`, or what aborted the signal (a drain, a revoked partition). */
export type GiveUpReason = 'max_elapsed' | string;

export interface RetryOptions extends RetryPolicy, RetryListener {
  /** Backoff growth per attempt. */
  multiplier: number;
  /** Aborted (drain, shutdown): no further attempt; a wait under way ends and the last error is thrown. */
  signal?: AbortSignal;
}

/**
 * The policy of every connector that does not say otherwise. Ten minutes ride out a server
 * restart, a failover or a short network outage; the source stays paused meanwhile
 * (backpressure), so nothing piles up in memory while waiting.
 */
export const defaultRetry: RetryOptions = { initialBackoffMs: 100, maxBackoffMs: 10_000, maxElapsedMs: 600_000, multiplier: 2 };

/**
 * Runs `operation`, retrying only errors that say they are retriable, with exponential backoff
 * and jitter (kafkajs-style: each wait is drawn between half and all of the current backoff)
 * until `maxElapsedMs` has passed since the first attempt. The last error is rethrown as is.
 */
export async function withRetry<T>(operation: (attempt: number) => Promise<T>, options: Partial<RetryOptions> = {}): Promise<T> {
  const opts = { ...defaultRetry, ...options };
  const started = Date.now();
  let backoff = Math.max(1, opts.initialBackoffMs);
  for (let attempt = 0; ; attempt++) {
    try {
      const result = await operation(attempt);
      if (attempt > 0) opts.onRecovered?.(attempt, Date.now() - started);
      return result;
    } catch (error) {
      if (!isRetriable(error)) throw error;
      const elapsedMs = Date.now() - started;
      const remaining = opts.maxElapsedMs - elapsedMs;
      if (opts.signal?.aborted || remaining <= 0) {
        opts.onGiveUp?.(error, attempt + 1, elapsedMs, opts.signal?.aborted ? abortReason(opts.signal) : 'max_elapsed');
        throw error;
      }
      const ceiling = Math.min(opts.maxBackoffMs, backoff);
      // The last wait ends at the deadline, so the final attempt still comes before giving up.
      const delayMs = Math.min(remaining, Math.round(ceiling / 2 + (Math.random() * ceiling) / 2));
      backoff = Math.min(opts.maxBackoffMs, backoff * opts.multiplier);
      opts.onRetry?.(error, attempt + 1, delayMs, elapsedMs);
      if (!(await sleep(delayMs, opts.signal))) {
        opts.onGiveUp?.(error, attempt + 1, Date.now() - started, abortReason(opts.signal!));
        throw error;
      }
    }
  }
}

function abortReason(signal: AbortSignal): string {
  return typeof signal.reason === 'string' ? signal.reason : 'aborted';
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (slept: boolean) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(slept);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** `42 s`, `1m30s`, `2h05m`: how long a wait has lasted, for the run log. */
export function formatWait(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}

/** A configured limit: sub-second ones in ms (`500 ms`), longer ones as formatWait. */
const formatLimit = (ms: number) => (ms < 1000 ? `${ms} ms` : formatWait(ms));

interface Outage {
  since: number;
  lastNotice: number;
  error: string;
}

/**
 * The run log's view of retries: per target (`s3 tier warm`, `catalog postgresql`), one line when
 * it starts failing, a reminder every `reminderMs` while it still fails, one line when it
 * recovers or is given up. Operations on the same target (two batches in flight) share one
 * outage, so the log says once what it waits for, not once per attempt.
 */
export class RetryNotices {
  private readonly outages = new Map<string, Outage>();

  constructor(
    /** The run log, also for what the retried callers say around their retries. */
    readonly log: (line: string) => void,
    private readonly reminderMs = 30_000,
  ) {}

  /** The listener for calls to `target`, and its policy (so the give-up line can say which limit was reached). */
  for(target: string, policy: RetryPolicy = defaultRetry): RetryListener {
    return {
      onRetry: (error, _attempt, _delayMs, elapsedMs) => {
        const now = Date.now();
        const outage = this.outages.get(target);
        const text = describeError(error);
        if (outage === undefined) {
          this.outages.set(target, { since: now - elapsedMs, lastNotice: now, error: text });
          this.log(`${target}: ${text}: retrying (for up to ${formatLimit(policy.maxElapsedMs)}); waited ${formatWait(elapsedMs)}`);
          return;
        }
        outage.error = text;
        if (now - outage.lastNotice < this.reminderMs) return;
        outage.lastNotice = now;
        this.log(`${target}: still retrying for ${formatWait(now - outage.since)}: ${text}`);
      },
      onRecovered: () => {
        const outage = this.outages.get(target);
        if (outage === undefined) return;
        this.outages.delete(target);
        this.log(`${target}: recovered after ${formatWait(Date.now() - outage.since)}`);
      },
      onGiveUp: (error, attempts, elapsedMs, reason) => {
        this.outages.delete(target);
        if (reason === 'max_elapsed') {
          this.log(`${target}: gave up after ${formatWait(elapsedMs)} and ${attempts} attempts (retry.max_elapsed ${formatLimit(policy.maxElapsedMs)}): ${describeError(error)}`);
        } else {
          this.log(`${target}: stopped retrying after ${formatWait(elapsedMs)} (${reason}): ${describeError(error)}`);
        }
      },
    };
  }

  /** Targets failing now and for how long (for the stall report). */
  current(): string[] {
    const now = Date.now();
    return [...this.outages].map(([target, o]) => `${target} for ${formatWait(now - o.since)}`);
  }
}

/** How the retries of a piece of work are reported (the run log) and cut short (drain). */
export interface RetryReport {
  notices?: RetryNotices;
  signal?: AbortSignal;
}

/** withRetry's options for calls to `target` under `policy`, reported and cut short as `report` says. */
export function retryOptions(target: string, policy: RetryPolicy, report: RetryReport = {}): Partial<RetryOptions> {
  return {
    ...policy,
    ...(report.notices === undefined ? {} : report.notices.for(target, policy)),
    ...(report.signal === undefined ? {} : { signal: report.signal }),
  };
}
