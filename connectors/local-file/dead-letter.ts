import { createReadStream } from 'node:fs';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { DeadLetterPositions, withoutPartitions, deadLetterLine, lowestPending, positionKey, positionOfKey, type DeadLetterSink } from '../../src/core/dead-letter.js';
import { StorageError } from '../../src/core/errors.js';
import type { DeadLetter } from '../../src/core/record.js';
import type { PartitionAssignment } from '../../src/core/source.js';
import type { LocalFileDeadLetterConfig } from './config.js';

/**
 * Appends dead letters as NDJSON; `flush` writes and fsyncs before their records are acked.
 * Exactly once by source position: `assigned` reads the file for the positions it already holds
 * from each partition's start offset on, and `flush` skips those (a crashed run's dead letters
 * are not appended again when their records are redelivered). The file holds whole lines only: a
 * failed or torn append is cut back. One process writes a file (workers sharing a Kafka group
 * each get their own path, or share a Kafka dead-letter topic).
 */
export class LocalFileDeadLetterSink implements DeadLetterSink {
  readonly location: string;
  private pending: DeadLetter[] = [];
  private readonly durable = new DeadLetterPositions();
  /** An append failed: part of it may be in the file, so the file is read back before the next one. */
  private uncertain = false;
  private handle: Promise<FileHandle> | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(config: LocalFileDeadLetterConfig) {
    this.location = resolve(config.path);
  }

  write(entry: DeadLetter): void {
    this.pending.push(entry);
  }

  revoked(partitions: readonly { source: string; partition: number }[]): void {
    this.pending = withoutPartitions(this.pending, partitions);
  }

  async assigned(partitions: readonly PartitionAssignment[]): Promise<void> {
    // Our own flushes in flight are in the file (or pending again) before it is read.
    await this.chain;
    const found = await this.durableOffsets(partitions);
    for (const p of partitions) this.durable.load(p.source, p.partition, p.startOffset ?? 0, found.get(positionKey(p.source, p.partition)) ?? []);
  }

  /** Per partition, the offsets at or after its start that the file holds. */
  private async durableOffsets(partitions: readonly PartitionAssignment[]): Promise<Map<string, number[]>> {
    const starts = new Map(partitions.map((p) => [positionKey(p.source, p.partition), p.startOffset ?? 0]));
    const found = new Map<string, number[]>();
    try {
      const lines = createInterface({ input: createReadStream(this.location), crlfDelay: Infinity });
      for await (const line of lines) {
        const entry = positionOfLine(line);
        if (entry === undefined) continue;
        const key = positionKey(entry.source, entry.partition);
        const start = starts.get(key);
        if (start === undefined || entry.offset < start) continue;
        let list = found.get(key);
        if (list === undefined) found.set(key, (list = []));
        list.push(entry.offset);
      }
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new StorageError(`reading the dead letter ${this.location} failed`, { cause, retriable: true, context: { stage: 'dead_letter', connector: 'local_file' } });
      }
    }
    return found;
  }

  flush(): Promise<void> {
    const next = this.chain.then(async () => {
      let entries = this.durable.fresh(this.pending);
      this.pending = [];
      if (entries.length === 0) return;
      let before: number | undefined;
      try {
        if (this.uncertain) {
          // A failed append may have written some lines (a full disk): those are not written twice.
          for (const [key, offsets] of await this.durableOffsets(lowestPending(entries))) for (const o of offsets) this.durable.add(positionOfKey(key, o));
          entries = this.durable.fresh(entries);
          this.uncertain = false;
        }
        this.handle ??= openForAppend(this.location);
        const handle = await this.handle;
        before = (await handle.stat()).size;
        await handle.appendFile(entries.map((e) => deadLetterLine(e)).join(''));
        await handle.sync();
      } catch (cause) {
        // Keep them for the next flush: a dead letter is never dropped. A failed append (a full
        // disk) may have written part of its lines: cut back to where it started, so the file
        // holds whole lines only; if even that fails, the next flush reads the file back first.
        this.pending = entries.concat(this.pending);
        const handle = this.handle;
        this.handle = undefined;
        const cut = before === undefined ? false : await handle!.then((h) => h.truncate(before).then(() => h.sync())).then(() => true, () => false);
        this.uncertain = before !== undefined && !cut;
        void handle?.then((h) => h.close()).catch(() => undefined);
        throw new StorageError(`dead letter write to ${this.location} failed`, {
          cause,
          retriable: true,
          context: { stage: 'dead_letter', connector: 'local_file' },
        });
      }
      for (const e of entries) this.durable.add(e.position);
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

/**
 * Opens the file for appending. A torn last line (a crash mid-append: its records were never
 * acknowledged, and are dead-lettered again) is cut off, so the file holds whole lines only.
 */
async function openForAppend(path: string): Promise<FileHandle> {
  await mkdir(dirname(path), { recursive: true });
  const handle = await open(path, 'a+');
  try {
    const { size } = await handle.stat();
    let end = size;
    const tail = Buffer.alloc(64 * 1024);
    while (end > 0) {
      const from = Math.max(0, end - tail.length);
      const { bytesRead } = await handle.read(tail, 0, end - from, from);
      const newline = tail.subarray(0, bytesRead).lastIndexOf(0x0a);
      if (newline >= 0) {
        end = from + newline + 1;
        break;
      }
      end = from;
    }
    if (end < size) {
      await handle.truncate(end);
      await handle.sync();
    }
    return handle;
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** The source position of a dead-letter line; undefined for a torn line. */
function positionOfLine(line: string): { source: string; partition: number; offset: number } | undefined {
  try {
    const value = JSON.parse(line) as { source?: unknown; partition?: unknown; offset?: unknown };
    if (typeof value.source === 'string' && typeof value.partition === 'number' && typeof value.offset === 'number') {
      return { source: value.source, partition: value.partition, offset: value.offset };
    }
  } catch {
    // A torn line of a crashed append: its record was never acknowledged, and is dead-lettered again.
  }
  return undefined;
}
