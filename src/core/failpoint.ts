/**
 * Named crash points for the kill -9 tests: when EARTHMEM_FAILPOINT names this point, the process
 * kills itself with SIGKILL right here, as a crash would, with nothing flushed or cleaned up. The
 * variable is read once per call, so a test sets it for one child process only.
 */
export function failpoint(name: string): void {
  if (process.env.EARTHMEM_FAILPOINT === name) process.kill(process.pid, 'SIGKILL');
}
