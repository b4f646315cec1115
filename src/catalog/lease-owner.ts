import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/** A lease holder's name: `host:pid:random`, so a process on the same host can tell a dead holder. */
export function leaseOwner(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/**
 * True when `owner` names a process of this host that no longer runs (killed): its lease can be
 * taken over at once instead of waiting for it to expire. Owners of other hosts expire.
 */
export function isDeadOwner(owner: string | undefined): boolean {
  const [host, pid] = owner?.split(':') ?? [];
  if (host !== hostname() || !/^\d+$/.test(pid ?? '')) return false;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
