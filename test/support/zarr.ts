import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** `earthmem run <file>` to its end (or its kill at `failpoint`), bounded. */
export function runToCompletion(file: string, failpoint?: string) {
  const env = { ...process.env };
  delete env.EARTHMEM_FAILPOINT;
  if (failpoint !== undefined) env.EARTHMEM_FAILPOINT = failpoint;
  return spawnSync(process.execPath, ['bin/earthmem.js', 'run', file], { env, encoding: 'utf8', timeout: 300_000 });
}

/** Every file of the stores under `dir`/warm (a killed put's temporary file excepted: gc's business) → sha256. */
export function storeFiles(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(join(dir, 'warm'), { recursive: true, withFileTypes: true })) {
    if (!name.isFile() || name.name.endsWith('.tmp')) continue;
    const path = join(name.parentPath, name.name);
    out[path.slice(dir.length)] = createHash('sha256').update(readFileSync(path)).digest('hex');
  }
  return out;
}
