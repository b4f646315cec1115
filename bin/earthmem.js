#!/usr/bin/env node
import { main } from '../dist/src/cli/main.js';

const code = await main(process.argv.slice(2));
// A drained run has committed and closed what it opened, but a client library may still hold a
// timer (kafkajs reconnecting after a broker restart) that would keep the process alive forever:
// exit once stdout and stderr are flushed.
const flushed = (stream) => new Promise((resolve) => stream.write('', resolve));
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
process.exit(code);
