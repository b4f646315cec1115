#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// The CLI runs from the compiled TypeScript in dist/, which `npm ci` / `npm install` builds (the
// `prepare` script) and the published package ships. Say so instead of ERR_MODULE_NOT_FOUND.
const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write(
    `earthmem: not built: ${fileURLToPath(entry)} is missing.\n` +
      `Run "npm run build" (or "npm ci", which builds) in ${fileURLToPath(new URL('..', import.meta.url))}\n`,
  );
  process.exit(1);
}

// Output piped into head, less or jq: a closed pipe ends the command quietly, as for any Unix tool.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
}

const { main } = await import(entry.href);
const code = await main(process.argv.slice(2));
// A drained run has committed and closed what it opened, but a client library may still hold a
// timer (kafkajs reconnecting after a broker restart) that would keep the process alive forever:
// exit once stdout and stderr are flushed.
const flushed = (stream) => new Promise((resolve) => stream.write('', resolve));
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
process.exit(code);
