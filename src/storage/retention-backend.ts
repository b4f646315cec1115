import type { Backend, BackendCapabilities, Body, ObjectStat, PutOptions } from '../core/backend.js';
import { WrappedBackend } from './wrapped-backend.js';
import { NotFoundError, ObjectLockedError } from '../core/errors.js';

/**
 * `backup_policy: {immutable: true, retention_period}`: an object cannot be overwritten or
 * deleted before its retention ends. Backends with server-side immutability (S3 object lock)
 * get `retainUntil` on every put, so the server enforces it even against other clients; every
 * backend is also guarded here, by the object's modification time, so the rule holds where the
 * server has no lock (Azurite, file systems) for everything that goes through earth-memory.
 */
export class RetentionBackend extends WrappedBackend {
  constructor(
    inner: Backend,
    private readonly retentionMs: number,
    private readonly now: () => number = Date.now,
  ) {
    super(inner);
  }

  override get capabilities(): BackendCapabilities {
    return { ...this.inner.capabilities, immutability: true };
  }

  /** Whether the policy is enforced by the server too (object lock) or only by the engine. */
  get serverEnforced(): boolean {
    return this.inner.capabilities.immutability;
  }

  override async put(key: string, body: Body, options: PutOptions = {}): Promise<ObjectStat> {
    await this.refuseIfRetained(key, 'overwrite');
    const retainUntil = this.inner.capabilities.immutability ? new Date(this.now() + this.retentionMs) : undefined;
    return this.inner.put(key, body, retainUntil ? { ...options, retainUntil } : options);
  }

  override async delete(key: string): Promise<void> {
    await this.refuseIfRetained(key, 'delete');
    return this.inner.delete(key);
  }

  /** When the retention of `key` ends, or undefined when there is no such object. */
  async retainedUntil(key: string): Promise<Date | undefined> {
    let stat: ObjectStat;
    try {
      stat = await this.inner.stat(key);
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
    // Without a modification time the object is treated as written now: the safe side.
    const written = stat.modified?.getTime() ?? this.now();
    return new Date(written + this.retentionMs);
  }

  private async refuseIfRetained(key: string, operation: 'overwrite' | 'delete'): Promise<void> {
    const until = await this.retainedUntil(key);
    if (until !== undefined && until.getTime() > this.now()) {
      throw new ObjectLockedError(`${key} is immutable until ${until.toISOString()} (backup_policy.retention_period); ${operation} refused`, {
        context: { connector: this.type, key, operation },
      });
    }
  }
}
