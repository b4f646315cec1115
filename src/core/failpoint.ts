/** How many times each crash point was reached in this process. */
const reached = new Map<string, number>();

/**
 * Named crash points for the kill -9 tests: when EARTHMEM_FAILPOINT names this point, the process
 * kills itself with SIGKILL right here, as a crash would, with nothing flushed or cleaned up. The
 * variable is read once per call, so a test sets it for one child process only.
 * `EARTHMEM_FAILPOINT=name@N` kills the N-th time the point is reached (a point inside a loop,
 * such as `migration.copying` after each chunk of a streamed copy).
 */
export function failpoint(name: string): void {
  const wanted = process.env.EARTHMEM_FAILPOINT;
  if (wanted === undefined || !wanted.startsWith(name)) return;
  const nth = wanted === name ? 1 : /^@([1-9]\d*)$/.exec(wanted.slice(name.length))?.[1];
  if (nth === undefined) return;
  const count = (reached.get(name) ?? 0) + 1;
  reached.set(name, count);
  if (count >= Number(nth)) process.kill(process.pid, 'SIGKILL');
}
