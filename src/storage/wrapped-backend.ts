import type { AccessTier, Backend, BackendCapabilities, Body, ObjectStat, PutOptions } from '../core/backend.js';

/**
 * The base of the wrappers a tier stacks on its backend (encryption, retention, read cache):
 * every Backend method goes to the wrapped backend unless the wrapper overrides it, so a wrapper
 * states only what it changes, and optional capabilities (rehydrate, unfinished writes) reach
 * the caller through any number of layers.
 */
export abstract class WrappedBackend implements Backend {
  constructor(readonly inner: Backend) {}

  get type(): string {
    return this.inner.type;
  }

  get capabilities(): BackendCapabilities {
    return this.inner.capabilities;
  }

  get location(): string {
    return this.inner.location;
  }

  get rehydrate(): Backend['rehydrate'] {
    return this.inner.rehydrate?.bind(this.inner);
  }

  get defaultAccessTier(): AccessTier | undefined {
    return this.inner.defaultAccessTier;
  }

  get setAccessTier(): Backend['setAccessTier'] {
    return this.inner.setAccessTier?.bind(this.inner);
  }

  get incompleteWrites(): Backend['incompleteWrites'] {
    return this.inner.incompleteWrites?.bind(this.inner);
  }

  uri(key: string): string {
    return this.inner.uri(key);
  }

  put(key: string, body: Body, options?: PutOptions): Promise<ObjectStat> {
    return this.inner.put(key, body, options);
  }

  get(key: string): Promise<Uint8Array> {
    return this.inner.get(key);
  }

  getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    return this.inner.getRange(key, offset, length);
  }

  stat(key: string): Promise<ObjectStat> {
    return this.inner.stat(key);
  }

  list(prefix: string): AsyncIterable<ObjectStat> {
    return this.inner.list(prefix);
  }

  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
