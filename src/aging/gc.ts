import { ObjectLockedError } from '../core/errors.js';
import type { OpenedStorage } from '../pipeline/read.js';
import type { Sink } from '../pipeline/tier-writer.js';

/** A stored object or rows that no catalog row points at. */
export interface Orphan {
  tier: string;
  backend: string;
  key: string;
  bytes: number | null;
  modified: string | null;
  /** What `gc` did or would do: `listed`, `deleted`, `retained until …`, `too young (…)`. */
  action: string;
  /** An unfinished write (temporary file, incomplete upload) rather than a whole object. */
  incomplete: boolean;
}

export interface GcOptions {
  /** Delete what is found; otherwise only list. */
  delete?: boolean;
  /** Objects younger than this are left alone (a write may be between its put and its catalog row). Default 1 h. */
  graceMs?: number;
  now?: number;
}

/**
 * `earthmem gc`: finds what each tier holds that the catalog does not know (fenced writes, crashes
 * between put and catalog upsert, abandoned migration copies, unfinished writes) and, with
 * `delete`, removes it. Young objects, retained ones and copies a migration step still refers to
 * are left alone.
 */
export async function collectGarbage(storage: OpenedStorage, options: GcOptions = {}): Promise<Orphan[]> {
  const now = options.now ?? Date.now();
  const grace = options.graceMs ?? 3_600_000;
  const known = new Set<string>();
  for (const row of await storage.catalog.list()) known.add(`${row.tier}\u0000${row.key}`);
  for (const step of await storage.catalog.openMigrationSteps()) {
    if (step.written !== null) known.add(`${step.destinationTier}\u0000${step.written.key}`);
  }
  const orphans: Orphan[] = [];
  for (const [name, tier] of storage.tiers) {
    const sinks = new Set<Sink>([tier.primary, ...(tier.vector ? [tier.vector] : [])]);
    for (const sink of sinks) {
      if (sink.kind === 'records') {
        for await (const key of sink.store.listKeys('')) {
          if (known.has(`${name}\u0000${key}`)) continue;
          const orphan: Orphan = { tier: name, backend: sink.store.type, key, bytes: null, modified: null, action: 'listed', incomplete: false };
          if (options.delete) {
            await sink.store.deleteRecords(key);
            orphan.action = 'deleted';
          }
          orphans.push(orphan);
        }
        continue;
      }
      for await (const stat of sink.backend.list('')) {
        if (known.has(`${name}\u0000${stat.key}`)) continue;
        // A Zarr store is catalogued by its root: its keys belong to it.
        const inStore = stat.key.indexOf('.zarr/');
        if (sink.kind === 'store' && inStore > 0 && known.has(`${name}\u0000${stat.key.slice(0, inStore + 5)}`)) continue;
        const orphan: Orphan = {
          tier: name, backend: sink.backend.type, key: stat.key, bytes: stat.size, modified: stat.modified?.toISOString() ?? null, action: 'listed', incomplete: false,
        };
        orphans.push(orphan);
        const age = stat.modified === undefined ? 0 : now - stat.modified.getTime();
        if (age < grace) {
          orphan.action = `too young (${Math.round(age / 1000)} s; grace ${Math.round(grace / 1000)} s)`;
          continue;
        }
        if (!options.delete) continue;
        try {
          await sink.backend.delete(stat.key);
          orphan.action = 'deleted';
        } catch (error) {
          if (!(error instanceof ObjectLockedError)) throw error;
          orphan.action = `retained: ${error.message}`;
        }
      }
      const base = sink.backend;
      if (base.incompleteWrites === undefined) continue;
      for await (const write of base.incompleteWrites()) {
        const age = write.modified === undefined ? 0 : now - write.modified.getTime();
        const orphan: Orphan = {
          tier: name, backend: base.type, key: write.key, bytes: write.size, modified: write.modified?.toISOString() ?? null, action: 'listed', incomplete: true,
        };
        orphans.push(orphan);
        if (age < grace) orphan.action = `too young (${Math.round(age / 1000)} s; grace ${Math.round(grace / 1000)} s)`;
        else if (options.delete) {
          await write.remove();
          orphan.action = 'deleted';
        }
      }
    }
  }
  return orphans;
}
