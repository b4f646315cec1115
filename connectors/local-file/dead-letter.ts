import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { deadLetterLine, type DeadLetterSink } from '../../src/core/dead-letter.js';
import { StorageError } from '../../src/core/errors.js';
import type { DeadLetter } from '../../src/core/record.js';
import type { LocalFileDeadLetterConfig } from './config.js';

/** Appends dead letters as NDJSON; `flush` writes and fsyncs before their records are acked. */
export class LocalFileDeadLetterSink implements DeadLetterSink {
  readonly location: string;
  private pending: string[] = [];
  private handle: Promise<FileHandle> | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(config: LocalFileDeadLetterConfig) {
    this.location = resolve(config.path);
  }

  write(entry: DeadLetter): void {
    this.pending.push(deadLetterLine(entry));
  }

  flush(): Promise<void> {
    const lines = this.pending;
    this.pending = [];
    const next = this.chain.then(async () => {
      if (lines.length === 0) return;
      try {
        this.handle ??= mkdir(dirname(this.location), { recursive: true }).then(() => open(this.location, 'a'));
        const handle = await this.handle;
        await handle.appendFile(lines.join(''));
        await handle.sync();
      } catch (cause) {
        // Keep them for the next flush: a dead letter is never dropped.
        this.pending = lines.concat(this.pending);
        throw new StorageError(`dead letter write to ${this.location} failed`, {
          cause,
          retriable: true,
          context: { stage: 'dead_letter', connector: 'local_file' },
        });
      }
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    await this.flush();
    if (this.handle) await (await this.handle).close();
    this.handle = undefined;
  }
}
