import v8 from 'node:v8';

/** The old generation may grow to 1.5× what survived the last full collection before the next one. */
export const HEAP_GROWING_PERCENT = 50;

/**
 * Memory of a long run. Records live for a batch's lifetime, so they reach the old generation,
 * and V8 lets it grow to up to 4× what survived the last full collection before marking again:
 * a Kafka backlog worker whose live heap stayed under 200 MiB peaked at 750 MiB RSS. A growing
 * factor of 1.5 keeps the garbage near the live size (a few more full collections, incremental).
 * V8 reads the flag at every heap limit computation, so setting it at start-up applies to the
 * whole process, encode workers included (flags are per process). One given on node's command
 * line wins. Called by the CLI (bin/earthmem.js) and the benchmark, before any work.
 */
export function tuneHeap(): void {
  if (process.execArgv.some((a) => a.startsWith('--heap-growing-percent') || a.startsWith('--heap_growing_percent'))) return;
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
