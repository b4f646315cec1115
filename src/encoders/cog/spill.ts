import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Compressed tiles, kept until the file can be written in COG order: in memory up to
 * `memoryBytes`, then all of them in an anonymous temp file (unlinked as soon as it is open,
 * so nothing is left behind if the process dies).
 */
export class SpillStore {
  private readonly memory = new Map<number, Uint8Array>();
  private memoryUsed = 0;
  private readonly onDisk = new Map<number, { at: number; length: number }>();
  private file: FileHandle | undefined;
  private opening: Promise<FileHandle> | undefined;
  private end = 0;
  private closed = false;

  constructor(
    private readonly memoryBytes: number,
    private readonly dir: string = tmpdir(),
  ) {}

  async put(key: number, data: Uint8Array): Promise<void> {
    if (!this.file && !this.opening && this.memoryUsed + data.length <= this.memoryBytes) {
      this.memory.set(key, data);
      this.memoryUsed += data.length;
      return;
    }
    const file = await this.openFile();
    // Positions are taken before the await, so concurrent writes never overlap.
    const at = this.end;
    this.end += data.length;
    this.onDisk.set(key, { at, length: data.length });
    await writeAll(file, data, at);
  }

  size(key: number): number {
    const m = this.memory.get(key);
    if (m) return m.length;
    const d = this.onDisk.get(key);
    if (!d) throw new Error(`tile ${key} was never stored`);
    return d.length;
  }

  /** Copies the tile into `target` at `offset`. */
  async read(key: number, target: Uint8Array, offset: number): Promise<void> {
    const m = this.memory.get(key);
    if (m) {
      target.set(m, offset);
      return;
    }
    const d = this.onDisk.get(key)!;
    let done = 0;
    while (done < d.length) {
      const { bytesRead } = await this.file!.read(target, offset + done, d.length - done, d.at + done);
      if (bytesRead === 0) throw new Error('temp file ended early');
      done += bytesRead;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.memory.clear();
    const file = this.file ?? (this.opening ? await this.opening.catch(() => undefined) : undefined);
    this.file = undefined;
    await file?.close();
  }

  private openFile(): Promise<FileHandle> {
    if (this.file) return Promise.resolve(this.file);
    this.opening ??= (async () => {
      const dir = await mkdtemp(join(this.dir, 'earthmem-cog-'));
      let file: FileHandle;
      try {
        file = await open(join(dir, 'tiles'), 'w+');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      if (this.closed) {
        await file.close();
        throw new Error('spill store closed');
      }
      // Move what memory held to the file, so reads have one place to look per key.
      for (const [key, data] of this.memory) {
        const at = this.end;
        this.end += data.length;
        this.onDisk.set(key, { at, length: data.length });
        await writeAll(file, data, at);
      }
      this.memory.clear();
      this.memoryUsed = 0;
      this.file = file;
      return file;
    })();
    return this.opening;
  }
}

async function writeAll(file: FileHandle, data: Uint8Array, at: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await file.write(data, done, data.length - done, at + done);
    done += bytesWritten;
  }
}
