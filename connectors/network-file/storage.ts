import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Backend, BackendCapabilities, Body, ObjectStat, PutOptions } from '../../src/core/backend.js';
import { ConfigError, StorageError } from '../../src/core/errors.js';
import { LocalFileStorage } from '../local-file/storage.js';
import { fsTypesByProtocol, type NetworkFileBackendConfig } from './config.js';

export interface MountEntry {
  mountPoint: string;
  fsType: string;
  source: string;
  options: string[];
}

/** Mounts of this host from /proc/self/mountinfo (the last entry for a path wins, as the kernel shows it). */
export async function readMounts(mountinfo = '/proc/self/mountinfo'): Promise<MountEntry[]> {
  const text = await readFile(mountinfo, 'utf8');
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [left, right] = line.split(' - ');
      const fields = left!.split(' ');
      const [fsType, source, superOptions] = right!.split(' ');
      return {
        mountPoint: unescape(fields[4]!),
        fsType: fsType!,
        source: unescape(source!),
        options: [...fields[5]!.split(','), ...(superOptions ?? '').split(',')],
      };
    });
}

/**
 * NetworkFileStorage: `local_file` semantics (atomic rename, fsync) on a mounted share, after
 * checking on open that `mount_point` is a mount of the configured protocol and server, and
 * writable. A share that disappears later surfaces as retriable I/O errors (ESTALE, EIO …).
 */
export class NetworkFileStorage implements Backend {
  readonly type = 'network_file';
  readonly capabilities: BackendCapabilities;
  private readonly files: LocalFileStorage;
  /** Option differences between the file and the mount, for the log. */
  readonly warnings: string[] = [];

  private constructor(private readonly config: NetworkFileBackendConfig) {
    this.files = new LocalFileStorage({ base_path: join(config.mount_point, config.base_path), permissions: config.permissions });
    this.capabilities = this.files.capabilities;
  }

  static async open(config: NetworkFileBackendConfig, mountinfo?: string): Promise<NetworkFileStorage> {
    const storage = new NetworkFileStorage(config);
    await storage.checkMount(mountinfo);
    await storage.checkWritable();
    return storage;
  }

  get location(): string {
    return this.files.location;
  }

  private async checkMount(mountinfo?: string): Promise<void> {
    const { protocol, server, remote_path: remotePath } = this.config;
    const mountPoint = resolve(this.config.mount_point);
    const mount = (await readMounts(mountinfo)).filter((m) => m.mountPoint === mountPoint).at(-1);
    const where = `network_file mount_point ${mountPoint}`;
    if (mount === undefined) throw new ConfigError(`${where} is not a mount point: mount the ${protocol} share there first (earth-memory does not mount shares)`);
    const types = fsTypesByProtocol[protocol];
    if (types !== null && !types.includes(mount.fsType)) {
      throw new ConfigError(`${where} is a ${mount.fsType} mount, expected ${types.join(' or ')} for protocol ${protocol}`);
    }
    if (server !== undefined && !mount.source.includes(server)) {
      throw new ConfigError(`${where} is mounted from ${mount.source}, not from server ${server}`);
    }
    if (remotePath !== undefined && !mount.source.replace(/\/+$/, '').endsWith(remotePath.replace(/\/+$/, ''))) {
      throw new ConfigError(`${where} is mounted from ${mount.source}, not from remote_path ${remotePath}`);
    }
    if (mount.options.includes('ro')) throw new ConfigError(`${where} is mounted read-only`);
    for (const [name, value] of Object.entries(this.config.connection_options)) {
      const actual = mount.options.find((o) => o === name || o.startsWith(`${name}=`));
      const wanted = value === true ? name : `${name}=${value}`;
      if (value !== false && actual !== wanted) this.warnings.push(`${where}: connection option ${wanted} wanted, mounted with ${actual ?? 'no such option'}`);
    }
  }

  /** Writes, fsyncs and removes a probe file, so a share that is mounted but not writable fails now, clearly. */
  private async checkWritable(): Promise<void> {
    const probe = join(this.files.root, `.earthmem-probe-${randomBytes(4).toString('hex')}`);
    try {
      await this.files.put(probe.slice(this.files.root.length + 1), new Uint8Array([1]));
      await rm(probe, { force: true });
    } catch (cause) {
      throw new StorageError(`network_file ${this.files.root} is not writable`, { cause, retriable: false, context: { connector: this.type, operation: 'open' } });
    }
  }

  uri(key: string): string {
    return this.files.uri(key);
  }
  put(key: string, body: Body, _options?: PutOptions): Promise<ObjectStat> {
    return this.files.put(key, body).catch((e) => Promise.reject(this.rename(e)));
  }
  get(key: string): Promise<Uint8Array> {
    return this.files.get(key).catch((e) => Promise.reject(this.rename(e)));
  }
  getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    return this.files.getRange(key, offset, length).catch((e) => Promise.reject(this.rename(e)));
  }
  stat(key: string): Promise<ObjectStat> {
    return this.files.stat(key).catch((e) => Promise.reject(this.rename(e)));
  }
  list(prefix: string): AsyncIterable<ObjectStat> {
    return this.files.list(prefix);
  }
  delete(key: string): Promise<void> {
    return this.files.delete(key).catch((e) => Promise.reject(this.rename(e)));
  }
  async close(): Promise<void> {}

  /** Errors name this connector, not the local file system underneath. */
  private rename(error: unknown): unknown {
    if (error instanceof StorageError) error.context.connector = this.type;
    return error;
  }
}
