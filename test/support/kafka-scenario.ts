/**
 * The Kafka scenarios of #3, shared by the pipeline tests and the fault tests: a 4-partition topic
 * loaded by kcat with 200k valid points, 500 features and some bad records; workers run
 * `pipelines/kafka.yaml` with a PostgreSQL catalog; the outcome is checked through the catalog
 * (pyarrow and DuckDB read every object) and the dead-letter topic.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { badRecords, writeSample } from '../../src/records/sample.js';
import { tempDir } from './fixtures.js';
import { brokers, catalogRows, createTopic, databaseUrl, deadLetters, lag, produceWithKcat, waitFor, type Worker } from './kafka.js';
import { checkParquet } from './python.js';
import type { CatalogRow } from '../../src/catalog/catalog.js';

const POINTS = 200_000;
const FEATURES = 500;
const BAD_COPIES = 3;
export const VALID = POINTS + FEATURES;
const expectedIds = [
  ...Array.from({ length: POINTS }, (_, i) => `obs-${i}`),
  ...Array.from({ length: FEATURES }, (_, i) => `fire-${i}`),
].sort();
const expectedReasons = badRecords(0).map((b) => b.reason).sort();

/** One scenario's topic, group, catalog schema, output folder and dead-letter topic. */
export function scenario(name: string) {
  const id = `${name}-${Date.now()}`;
  const dir = tempDir(name);
  const env = {
    KAFKA_BROKERS: brokers(),
    DATABASE_URL: databaseUrl(),
    EARTHMEM_TOPIC: `obs-${id}`,
    EARTHMEM_GROUP: `group-${id}`,
    EARTHMEM_CATALOG_SCHEMA: `t_${id.replace(/[^a-z0-9]/gi, '_').toLowerCase()}`,
    EARTHMEM_DATA: join(dir, 'out'),
    EARTHMEM_DEAD_LETTER_TOPIC: `dlq-${id}`,
    EARTHMEM_MAX_ROWS: '20000',
    EARTHMEM_MAX_AGE: '2s',
    EARTHMEM_LAG_LOG_INTERVAL: '1s',
    // A killed worker's partitions move on after 10 s instead of 30 s.
    EARTHMEM_SESSION_TIMEOUT: '10s',
    EARTHMEM_STALL_TIMEOUT: '20s',
  };
  return { dir, env, input: join(dir, 'in.ndjson') };
}

/** Writes the input, creates the topic, runs `beforeProduce` (e.g. start workers), then produces. */
export async function loadTopic(s: ReturnType<typeof scenario>, beforeProduce: () => Promise<void> = async () => undefined): Promise<void> {
  await writeSample(s.input, { points: POINTS, features: FEATURES, badCopies: BAD_COPIES, seed: 11 });
  await createTopic(s.env.EARTHMEM_TOPIC, 4);
  await beforeProduce();
  produceWithKcat(s.env.EARTHMEM_TOPIC, s.input);
}

export async function drained(s: ReturnType<typeof scenario>, ...workers: Worker[]): Promise<void> {
  try {
    await waitFor('the group to commit every offset', async () => (await lag(s.env.EARTHMEM_TOPIC, s.env.EARTHMEM_GROUP)) === 0);
  } catch (error) {
    // The whole log goes to a file; the message shows its tail without the periodic lag lines.
    const logs = workers.map((w, i) => {
      const file = join(s.dir, `worker-${i}.log`);
      writeFileSync(file, w.output());
      const tail = w.output().split('\n').filter((l) => !l.includes('kafkajs ERROR') && !l.startsWith('kafka lag')).slice(-30).join('\n');
      return `${file}:\n${tail}`;
    });
    throw new Error(`${(error as Error).message}; workers said:\n${logs.join('\n---\n')}`);
  }
}

/**
 * Waits until a (re)started worker has joined its group and been assigned partitions. When the
 * group has already committed everything, the lag is 0 at once, and a SIGTERM sent while the
 * worker still loads its modules (no handler yet) would end it by the signal, not by a drain.
 */
export async function joined(...workers: Worker[]): Promise<void> {
  for (const w of workers) await waitFor('the worker to join its group', async () => /kafka group \S+: assigned /.test(w.output()), 60_000);
}

export async function stop(...workers: Worker[]): Promise<void> {
  for (const w of workers) w.child.kill('SIGTERM');
  for (const w of workers) {
    const code = await Promise.race([w.exited, new Promise<string>((r) => setTimeout(() => r('no exit 60 s after SIGTERM'), 60_000).unref())]);
    assert.equal(code, 0, w.output());
  }
}

/** What an outcome check counted, for a test's closing figures. */
export interface ExactlyOnceFigures {
  /** Records produced: valid ones and bad copies. */
  recordsIn: number;
  /** Rows in the catalog (each valid record once when nothing is duplicated). */
  written: number;
  /** Valid records found in no object. */
  lost: number;
  /** Valid records found in more than one object or row. */
  duplicated: number;
  /** Distinct bad records in the dead-letter topic. */
  deadLettered: number;
}

/**
 * Every valid record exactly once through the catalog (read by pyarrow/DuckDB); every bad one
 * dead-lettered. `localPath` gives the file of a row's object (default: its uri, a local file; an
 * object store's objects are fetched by the caller).
 */
export async function assertExactlyOnce(
  s: ReturnType<typeof scenario>,
  localPath: (row: CatalogRow) => Promise<string> = async (row) => row.uri,
  deadLetter: () => DeadLetterEntry[] = () => deadLetters(s.env.EARTHMEM_DEAD_LETTER_TOPIC),
): Promise<ExactlyOnceFigures> {
  const rows = await catalogRows(s.env.EARTHMEM_CATALOG_SCHEMA);
  const paths = new Map<CatalogRow, string>();
  for (const row of rows) paths.set(row, await localPath(row));
  const check = checkParquet(rows.map((r) => paths.get(r)!));
  const ids = check.files.flatMap((f) => f.ids as string[]).sort();
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  const dead = deadLetter();
  const distinct = new Map(dead.map((d) => [`${d.partition}:${d.offset}`, d.reason]));
  const figures: ExactlyOnceFigures = {
    recordsIn: VALID + expectedReasons.length * BAD_COPIES,
    written: rows.reduce((n, r) => n + r.rows, 0),
    lost: expectedIds.filter((id) => !counts.has(id)).length,
    duplicated: [...counts.values()].reduce((n, c) => n + c - 1, 0),
    deadLettered: distinct.size,
  };
  assert.equal(figures.written, VALID, 'rows in the catalog');
  assert.equal(check.duckdb_count, VALID);
  assert.deepEqual(ids, expectedIds, 'every valid record exactly once');
  for (const f of check.files) assert.deepEqual(f.problems, [], f.path);
  for (const row of rows) {
    assert.equal(createHash('sha256').update(readFileSync(paths.get(row)!)).digest('hex'), row.sha256, row.key);
    assert.equal(row.provenance.length, 1, 'one source partition per object');
  }
  // Exactly once, by source position: a crash and redelivery do not dead-letter a record twice.
  assert.deepEqual([...distinct.values()].sort(), expectedReasons.flatMap((r) => Array(BAD_COPIES).fill(r)).sort());
  assert.equal(dead.length, distinct.size, `dead letters by position, each once: ${dead.length} messages for ${distinct.size} positions`);
  return figures;
}

export type Scenario = ReturnType<typeof scenario>;

/** The entries of a dead-letter file (`dead_letter: {type: local_file}`), as `deadLetters` gives a topic's. */
export interface DeadLetterEntry {
  reason: string;
  offset: number;
  partition: number;
}

export function deadLetterLines(file: string): DeadLetterEntry[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as DeadLetterEntry);
}
