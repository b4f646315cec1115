import { Worker, type ResourceLimits } from 'node:worker_threads';
import { EncodeError } from '../core/errors.js';
import { columnBuffers, type BatchColumns } from './arrow/batch-table.js';
import type { EncodedObject } from './encoder.js';
import type { ParquetOptions } from './parquet/geoparquet.js';

/**
 * Encoding and compression on worker threads, so the main thread only reads, routes and
 * commits. A batch goes to a worker as packed columns with its buffers transferred, and comes
 * back as the object's bytes, transferred too.
 *
 * One pool per size per process, shared by every encoder that leases it (all tiers of all
 * pipelines): the cores are the process's, not a tier's. Workers start on the first job and are
 * unref'd while idle, so an idle pool never keeps a process alive; the last lease's release
 * terminates them.
 */

export interface EncodePoolLimits {
  /** Jobs waiting for a worker; past it a job fails (retriable). Writers are bounded far below it. */
  maxQueued: number;
  /** A worker that takes longer on one batch is terminated and the job fails (retriable). */
  jobTimeoutMs: number;
  /** Bounds each worker's JS heap (wasm memory is not counted); a worker over its old generation dies, its job fails (retriable). */
  resourceLimits?: ResourceLimits;
}

/**
 * A worker's young generation is capped at 8 MiB (Node's default lets it grow to 48): what a
 * worker allocates is a batch's typed arrays, outside the JS heap, and objects that die within
 * one encode. The cap took 35–60 MiB off a file replay's peak RSS at the same speed
 * (benchmarks/RESULTS.md, 2026-12-02 night); the old generation stays unbounded, so a large
 * batch is never killed for it.
 */
export const defaultEncodePoolLimits: EncodePoolLimits = { maxQueued: 256, jobTimeoutMs: 120_000, resourceLimits: { maxYoungGenerationSizeMb: 8 } };

/** What the worker is sent. */
export interface EncodeRequest {
  columns: BatchColumns;
  options: ParquetOptions;
}

/** What the worker answers: the object, or the message of what failed. */
export type EncodeReply = { ok: true; result: EncodedObject } | { ok: false; error: { name: string; message: string; stack?: string } };

interface Job {
  request: EncodeRequest;
  resolve(result: EncodedObject): void;
  reject(error: unknown): void;
}

interface PoolWorker {
  worker: Worker;
  /** The worker's own is -1 once it has exited. */
  threadId: number;
  job?: Job;
  timer?: NodeJS.Timeout;
}

export class EncodePool {
  private readonly workers = new Set<PoolWorker>();
  private readonly idle: PoolWorker[] = [];
  private readonly queue: Job[] = [];
  private closed = false;

  constructor(readonly size: number, private readonly limits: EncodePoolLimits = defaultEncodePoolLimits) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`an encode pool needs at least one worker, not ${size}`);
  }

  /** Started workers (for tests and logs). */
  get started(): number {
    return this.workers.size;
  }

  /**
   * Encodes in a worker; `columns` are transferred, unusable after the call. Rejects with the
   * worker's error when the encode failed there, and with a retriable EncodeError when the worker
   * could not finish (crashed, timed out, closed) or the queue is full.
   */
  encode(columns: BatchColumns, options: ParquetOptions): Promise<EncodedObject> {
    if (this.closed) return Promise.reject(new EncodeError('the encode pool is closed', { context: { stage: 'encode' } }));
    if (this.queue.length >= this.limits.maxQueued) {
      return Promise.reject(new EncodeError(`the encode pool has ${this.queue.length} batches waiting`, { retriable: true, context: { stage: 'encode' } }));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ request: { columns, options }, resolve, reject });
      this.dispatch();
    });
  }

  /** Fails what waits, terminates the workers (what they run fails, retriable) and refuses new jobs. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new EncodeError('the encode pool closed', { retriable: true, context: { stage: 'encode' } }));
    await Promise.all([...this.workers].map((w) => w.worker.terminate()));
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      let w = this.idle.pop();
      if (w === undefined) {
        if (this.workers.size >= this.size) return;
        w = this.spawn();
      }
      this.run(w, this.queue.shift()!);
    }
  }

  private spawn(): PoolWorker {
    // The worker file sits next to this one in dist/. It is imported from an eval'd script so the
    // worker inherits node's flags whatever they are (a worker *file* refuses --input-type, which
    // `node --input-type=module -e …` parents have, and an explicit execArgv refuses V8 flags).
    const url = new URL('./encode-worker.js', import.meta.url);
    const options = { eval: true, ...(this.limits.resourceLimits === undefined ? {} : { resourceLimits: this.limits.resourceLimits }) };
    const w: PoolWorker = { worker: new Worker(`import(${JSON.stringify(url.href)})`, options), threadId: 0 };
    w.threadId = w.worker.threadId;
    w.worker.unref();
    this.workers.add(w);
    w.worker.on('message', (reply: EncodeReply) => this.settle(w, reply));
    // An uncaught error ends the worker: 'exit' follows and fails its job.
    w.worker.on('error', (error) => this.fail(w, new EncodeError(`encode worker ${w.threadId} failed`, { cause: error, retriable: true, context: { stage: 'encode' } })));
    w.worker.on('messageerror', (error) => {
      this.fail(w, new EncodeError('an encode worker reply could not be read', { cause: error, context: { stage: 'encode' } }));
      this.release(w);
    });
    w.worker.on('exit', (code) => {
      this.fail(w, new EncodeError(this.closed ? 'the encode pool closed' : `encode worker ${w.threadId} exited with code ${code}`, { retriable: true, context: { stage: 'encode' } }));
      this.workers.delete(w);
      const i = this.idle.indexOf(w);
      if (i >= 0) this.idle.splice(i, 1);
      // A replacement starts if jobs are waiting.
      if (!this.closed) this.dispatch();
    });
    return w;
  }

  private run(w: PoolWorker, job: Job): void {
    w.job = job;
    // Referenced while it works: a pending encode keeps the process alive.
    w.worker.ref();
    w.timer = setTimeout(() => {
      this.fail(w, new EncodeError(`encode worker ${w.threadId} took more than ${this.limits.jobTimeoutMs} ms`, { retriable: true, context: { stage: 'encode' } }));
      void w.worker.terminate();
    }, this.limits.jobTimeoutMs);
    w.timer.unref();
    try {
      w.worker.postMessage(job.request, columnBuffers(job.request.columns));
    } catch (cause) {
      this.fail(w, new EncodeError('a batch could not be sent to an encode worker', { cause, context: { stage: 'encode' } }));
      this.release(w);
    }
  }

  private settle(w: PoolWorker, reply: EncodeReply): void {
    const job = this.take(w);
    if (job === undefined) return;
    if (reply.ok) job.resolve(reply.result);
    else {
      // The batch itself failed to encode: its error as the worker saw it, for the encoder to wrap
      // as it wraps an in-process failure (not retriable: the same input fails again).
      const cause = new Error(reply.error.message);
      cause.name = reply.error.name;
      if (reply.error.stack !== undefined) cause.stack = reply.error.stack;
      job.reject(cause);
    }
    this.release(w);
  }

  private fail(w: PoolWorker, error: EncodeError): void {
    this.take(w)?.reject(error);
  }

  /** The worker's job, once: a reply, a crash and a timeout may race. */
  private take(w: PoolWorker): Job | undefined {
    const job = w.job;
    w.job = undefined;
    clearTimeout(w.timer);
    return job;
  }

  private release(w: PoolWorker): void {
    if (!this.workers.has(w)) return;
    w.worker.unref();
    this.idle.push(w);
    this.dispatch();
  }
}

export interface EncodePoolLease {
  encode(columns: BatchColumns, options: ParquetOptions): Promise<EncodedObject>;
  /** Once per lease; the last one closes the pool. */
  release(): Promise<void>;
}

const shared = new Map<number, { pool: EncodePool; leases: number }>();

/** A lease on the process's pool of `size` workers, made on the first lease. */
export function leaseEncodePool(size: number): EncodePoolLease {
  let entry = shared.get(size);
  if (entry === undefined) {
    entry = { pool: new EncodePool(size), leases: 0 };
    shared.set(size, entry);
  }
  const held = entry;
  held.leases++;
  let released = false;
  return {
    encode: (columns, options) => (released ? Promise.reject(new EncodeError('the encode pool lease was released', { context: { stage: 'encode' } })) : held.pool.encode(columns, options)),
    async release() {
      if (released) return;
      released = true;
      if (--held.leases > 0) return;
      if (shared.get(size) === held) shared.delete(size);
      await held.pool.close();
    },
  };
}
