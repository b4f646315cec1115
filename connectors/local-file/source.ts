import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { SourceError } from '../../src/core/errors.js';
import type { RawChunk, Source, SourceHooks } from '../../src/core/source.js';
import type { FileSourceConfig } from './config.js';

/** Files named by `path`: the file itself, or the matches of a glob in its file-name part. */
export async function resolveFiles(path: string): Promise<string[]> {
  const name = basename(path);
  if (!/[*?[]/.test(name)) {
    try {
      await stat(path);
    } catch (cause) {
      throw new SourceError(`source file not found: ${path}`, { cause, context: { connector: 'file', file: path } });
    }
    return [path];
  }
  if (/[*?[]/.test(dirname(path))) {
    throw new SourceError(`only the file-name part of a path may be a glob: ${path}`, { context: { connector: 'file' } });
  }
  const pattern = new RegExp(
    `^${name.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`,
  );
  let entries: string[];
  try {
    entries = await readdir(dirname(path));
  } catch (cause) {
    throw new SourceError(`cannot list ${dirname(path)}`, { cause, context: { connector: 'file', file: path } });
  }
  const files = entries.filter((e) => pattern.test(e)).sort().map((e) => join(dirname(path), e));
  if (files.length === 0) throw new SourceError(`no file matches ${path}`, { context: { connector: 'file' } });
  return files;
}

const LF = 0x0a;
const BOM = [0xef, 0xbb, 0xbf];

/**
 * Line `number` of a file, bytes [start, end) without its line break: a CRLF's CR is part of the
 * break, and a UTF-8 byte order mark before the first line is not part of the line. Blank lines
 * (only spaces, tabs or CR) are no records: undefined.
 */
function lineAt(bytes: Buffer, start: number, end: number, number: number): Buffer | undefined {
  if (number === 1 && bytes[start] === BOM[0] && bytes[start + 1] === BOM[1] && bytes[start + 2] === BOM[2]) start += 3;
  if (end > start && bytes[end - 1] === 0x0d) end--;
  for (let i = start; i < end; i++) {
    const c = bytes[i];
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d) return bytes.subarray(start, end);
  }
  return undefined;
}

/** A stable name for provenance: relative to the working directory when inside it. */
export function sourceName(file: string): string {
  const rel = relative(process.cwd(), resolve(file));
  return rel.startsWith('..') ? resolve(file) : rel.split(sep).join('/');
}

/**
 * Replays NDJSON files line by line, in file-name order, as chunks of raw payloads with
 * positions (file, line). A bounded source: it ends when the files are read.
 */
export class FileSource implements Source {
  readonly bounded = true;
  readonly shared = false;
  readonly name: string;
  private hooks: SourceHooks | undefined;

  constructor(private readonly config: FileSourceConfig) {
    this.name = `file:${config.path}`;
  }

  /** Each file is announced as a partition before its first line, so a replay sees what is already catalogued. */
  attach(hooks: SourceHooks): void {
    this.hooks = hooks;
  }

  async *chunks(signal: AbortSignal): AsyncGenerator<RawChunk> {
    for (const file of await resolveFiles(this.config.path)) {
      if (signal.aborted) return;
      const source = sourceName(file);
      await this.hooks?.assigned([{ source, partition: 0, startOffset: 0 }]);
      let line = 0;
      let rest: Buffer | undefined;
      const stream = createReadStream(file, { highWaterMark: 1 << 20 });
      try {
        for await (const read of stream as AsyncIterable<Buffer>) {
          // Lines stay bytes: a payload is a view into the chunk it was read in, not a copy.
          const bytes = rest === undefined ? read : Buffer.concat([rest, read]);
          const chunk: RawChunk = { payloads: [], positions: [] };
          let start = 0;
          for (let newline = bytes.indexOf(LF, start); newline >= 0; newline = bytes.indexOf(LF, start)) {
            line++;
            const payload = lineAt(bytes, start, newline, line);
            start = newline + 1;
            if (payload === undefined) continue;
            chunk.payloads.push(payload);
            chunk.positions.push({ source, partition: 0, offset: line });
          }
          rest = start < bytes.length ? bytes.subarray(start) : undefined;
          if (chunk.payloads.length > 0) yield chunk;
          if (signal.aborted) return;
        }
      } catch (cause) {
        throw new SourceError(`reading ${file} failed`, { cause, retriable: false, context: { connector: 'file', file } });
      } finally {
        stream.destroy();
      }
      line++;
      const last = rest === undefined ? undefined : lineAt(rest, 0, rest.length, line);
      if (last !== undefined) yield { payloads: [last], positions: [{ source, partition: 0, offset: line }] };
    }
  }

  async commit(): Promise<void> {
    // A file replay has nothing to commit: re-running it rewrites the same keys.
  }

  async close(): Promise<void> {}
}
