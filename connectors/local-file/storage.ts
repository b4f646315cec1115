import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { declareCapabilities, type Backend, type Body, type ObjectStat } from '../../src/core/backend.js';
import { NotFoundError, StorageError } from '../../src/core/errors.js';
import { parsePermissions, type LocalFileBackendConfig } from './config.js';

/** Errors that may clear by themselves: a full disk or quota is retried (space may be freed) with the tier's retry policy. */
const retriableCodes = new Set(['EAGAIN', 'EBUSY', 'EMFILE', 'ENFILE', 'EINTR', 'ETIMEDOUT', 'ESTALE', 'EIO', 'ENOSPC', 'EDQUOT']);
const fullCodes = new Set(['ENOSPC', 'EDQUOT']);

/**
 * LocalFileStorage: objects are files under `base_path`. Writes are atomic and durable:
 * temp file in the same folder, fsync, rename over the key, fsync the folder.
 */
export class LocalFileStorage implements Backend {
  readonly type = 'local_file';
  readonly capabilities = declareCapabilities({ rangeReads: true });
  readonly root: string;
  private readonly mode: number;

  get location(): string {
    return this.root;
  }

  constructor(config: Pick<LocalFileBackendConfig, 'base_path' | 'permissions'>) {
    this.root = resolve(config.base_path);
    this.mode = parsePermissions(config.permissions);
  }

  /** Absolute path of a key; refuses keys that would leave the root. */
  pathOf(key: string): string {
    const path = resolve(this.root, key);
    const rel = relative(this.root, path);
    if (key.length === 0 || rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || key.includes('\0')) {
      throw new StorageError(`key escapes the storage root: ${JSON.stringify(key)}`, { context: { connector: this.type, key } });
    }
    return path;
  }

  uri(key: string): string {
    return this.pathOf(key);
  }

  async put(key: string, body: Body): Promise<ObjectStat> {
    const path = this.pathOf(key);
    const dir = dirname(path);
    const temp = join(dir, `.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await mkdir(dir, { recursive: true });
      const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, this.mode);
      let size = 0;
      try {
        if (body instanceof Uint8Array) {
          await handle.writeFile(body);
          size = body.byteLength;
        } else {
          for await (const chunk of body) {
            await handle.write(chunk);
            size += chunk.byteLength;
          }
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, path);
      await syncDir(dir);
      return { key, size };
    } catch (cause) {
      await rm(temp, { force: true }).catch(() => undefined);
      throw this.fail('put', key, cause);
    }
  }

  async get(key: string): Promise<Uint8Array> {
    try {
      return new Uint8Array(await readFile(this.pathOf(key)));
    } catch (cause) {
      throw this.fail('get', key, cause);
    }
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    try {
      const handle = await open(this.pathOf(key), 'r');
      try {
        const buffer = Buffer.alloc(length);
        const { bytesRead } = await handle.read(buffer, 0, length, offset);
        return new Uint8Array(buffer.buffer, buffer.byteOffset, bytesRead);
      } finally {
        await handle.close();
      }
    } catch (cause) {
      throw this.fail('getRange', key, cause);
    }
  }

  async stat(key: string): Promise<ObjectStat> {
    try {
      const s = await stat(this.pathOf(key));
      return { key, size: s.size, modified: s.mtime };
    } catch (cause) {
      throw this.fail('stat', key, cause);
    }
  }

  /** The temporary files of puts that a crash interrupted (`.<random>.tmp` next to their object). */
  async *incompleteWrites(): AsyncIterable<ObjectStat & { remove(): Promise<void> }> {
    const walk = async function* (this: LocalFileStorage, dir: string): AsyncGenerator<ObjectStat & { remove(): Promise<void> }> {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw this.fail('list', '', cause);
      }
      for (const entry of entries) {
        const full = join(dir, entry.name);
        if (entry.isDirectory()) yield* walk.call(this, full);
        else if (entry.isFile() && entry.name.startsWith('.') && entry.name.endsWith('.tmp')) {
          const s = await stat(full);
          yield { key: relative(this.root, full).split(sep).join('/'), size: s.size, modified: s.mtime, remove: () => rm(full, { force: true }) };
        }
      }
    };
    yield* walk.call(this, this.root);
  }

  async *list(prefix: string): AsyncIterable<ObjectStat> {
    const walk = async function* (this: LocalFileStorage, dir: string): AsyncGenerator<ObjectStat> {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw this.fail('list', prefix, cause);
      }
      entries.sort((a, b) => (a.name < b.name ? -1 : 1));
      for (const entry of entries) {
        if (entry.name.endsWith('.tmp') && entry.name.startsWith('.')) continue;
        const full = join(dir, entry.name);
        if (entry.isDirectory()) yield* walk.call(this, full);
        else if (entry.isFile()) {
          const key = relative(this.root, full).split(sep).join('/');
          if (key.startsWith(prefix)) {
            const s = await stat(full);
            yield { key, size: s.size, modified: s.mtime };
          }
        }
      }
    };
    const slash = prefix.lastIndexOf('/');
    const start = slash < 0 ? this.root : this.pathOf(prefix.slice(0, slash));
    yield* walk.call(this, start);
  }

  async delete(key: string): Promise<void> {
    try {
      await unlink(this.pathOf(key));
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw this.fail('delete', key, cause);
    }
  }

  async close(): Promise<void> {}

  private fail(operation: string, key: string, cause: unknown): Error {
    if (cause instanceof StorageError) return cause;
    const code = (cause as NodeJS.ErrnoException).code ?? '';
    const context = { connector: this.type, key, operation };
    if (code === 'ENOENT' && operation !== 'put') return new NotFoundError(key, { cause, context });
    const where = fullCodes.has(code) ? `: no space left under ${this.root}` : '';
    return new StorageError(`local_file ${operation} failed (${code || 'error'}${where})`, {
      cause,
      retriable: retriableCodes.has(code),
      context,
    });
  }
}

export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
