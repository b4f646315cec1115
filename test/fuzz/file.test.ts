/**
 * The bulk of the fuzz suite: 10,000+ hostile payloads as the lines of one NDJSON file, through
 * runPipeline with the demo pipeline. Every line ends where the oracle says: in the dead letter
 * with one of its reasons and its bytes exactly, or in the output with its values (read back by
 * the project's decoder, and by pyarrow/DuckDB); no crash, and no prototype pollution.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { SqliteCatalog } from '../../src/catalog/sqlite.js';
import { runPipeline } from '../../src/pipeline/run.js';
import { demoConfig, tempDir } from '../support/fixtures.js';
import { checkParquet } from '../support/python.js';
import type { ClassifyRules } from './oracle.js';
import {
  asExpected, assertNoPollution, assertSameRecords, deadLetterBytes, expectedFate, localTiers, prototypes, readBack, recordKey, sampleCases, seeded,
  storedGeometry, tally, type Fate,
} from './support.js';

const CASES = Number(process.env.FUZZ_FILE_CASES ?? 10_240);
const CR = 0x0d, LF = 0x0a;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** A line's payload as README says the file source reads it: one CR before the LF is the break's; blank lines are none. */
function payloadOf(line: Buffer, ending: string): Buffer | undefined {
  let bytes = ending === '\r\n' ? Buffer.concat([line, Buffer.from([CR])]) : line;
  if (bytes.at(-1) === CR) bytes = bytes.subarray(0, -1);
  return bytes.every((c) => c === 0x20 || c === 0x09 || c === CR) ? undefined : bytes;
}

const keyOf = (f: Extract<Fate, { dead: false }>) =>
  recordKey(f.record.kind === 'vector' ? { ...f.record, geometry: storedGeometry(f.record.geometry) } : f.record, f.memoryType);

describe('fuzz: hostile lines through the file source', () => {
  it(`${CASES} cases in one file: dead letter with the oracle's reason and the bytes, or the output with the values`, { timeout: 600_000 }, () =>
    seeded('fuzz file', async (seed) => {
      const dir = tempDir('fuzz-file');
      const input = join(dir, 'in.ndjson');
      const data = join(dir, 'out');
      const config = demoConfig(input, data);
      const max = config.source.max_record_bytes;
      const classify = config.classify as ClassifyRules;
      const cases = sampleCases(CASES, max, seed);

      // The file starts with a BOM (skipped by the source); lines end in LF or CRLF, the last in
      // nothing. A line cannot hold an LF: the generator's are spaces here.
      const parts: Buffer[] = [BOM];
      const lines: { line: number; tag: string; payload: Buffer; fate: Fate }[] = [];
      cases.forEach((c, i) => {
        const line = Buffer.from(c.bytes.map((b) => (b === LF ? 0x20 : b)));
        const ending = i === cases.length - 1 ? '' : i % 3 === 0 ? '\r\n' : '\n';
        parts.push(line, Buffer.from(ending));
        const payload = payloadOf(line, ending);
        if (payload !== undefined) lines.push({ line: i + 1, tag: c.tag, payload, fate: expectedFate(payload, max, classify) });
      });
      writeFileSync(input, Buffer.concat(parts));

      const before = prototypes();
      const summary = await runPipeline(config);
      assertNoPollution(before);

      const dead = lines.filter((l) => l.fate.dead);
      const written = lines.flatMap((l) => (l.fate.dead ? [] : [l.fate]));
      assert.equal(summary.recordsRead, lines.length, 'one record per non-blank line');
      assert.equal(summary.payloadBytesRead, lines.reduce((n, l) => n + l.payload.length, 0), 'payload bytes, without line breaks and the BOM');
      assert.equal(summary.complete, true);

      // The dead letter: one entry per refused line, its reason one the oracle allows, its bytes the line's.
      const entries = readFileSync(join(data, 'dead-letter.ndjson'), 'utf8').split('\n').filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const byLine = new Map(entries.map((e) => [e.offset as number, e]));
      assert.equal(byLine.size, entries.length, 'one dead letter per line');
      for (const l of lines) {
        const entry = byLine.get(l.line);
        const at = `line ${l.line} [${l.tag}] ${l.payload.subarray(0, 200).toString('latin1')}`;
        if (!l.fate.dead) {
          assert.equal(entry, undefined, `${at}: valid (${keyOf(l.fate).slice(0, 300)}) but dead-lettered as ${String(entry?.reason)}: ${String(entry?.message)}`);
          continue;
        }
        assert.ok(entry, `${at}: should be dead-lettered (${l.fate.reasons.join('|')})`);
        assert.ok(l.fate.reasons.includes(entry.reason as string), `${at}: reason ${String(entry.reason)} (${String(entry.message)}), oracle: ${l.fate.reasons.join('|')} (${l.fate.why.join('; ')})`);
        assert.equal(entry.source, resolve(input));
        assert.equal(entry.partition, 0);
        assert.equal(Buffer.compare(deadLetterBytes(entry), l.payload), 0, `${at}: the dead letter holds the line's bytes`);
      }
      assert.equal(entries.length, dead.length);
      assert.equal(summary.deadLettered, dead.length);
      assert.equal(summary.recordsWritten, written.length);
      assert.deepEqual(summary.deadLetterReasons, Object.fromEntries(tally(entries.map((e) => e.reason as string))));

      // The output, decoded from every catalogued object: exactly the valid records, with their values.
      const catalog = new SqliteCatalog(join(data, 'catalog.sqlite'));
      const rows = await catalog.list();
      await catalog.close();
      const back = readBack(rows, localTiers(config));
      assertSameRecords(back.map((b) => recordKey(asExpected(b.record), b.memoryType)), written.map(keyOf), 'decoded objects');

      // pyarrow and DuckDB read the same files: GeoParquet metadata sound, ids and counts the same.
      const check = checkParquet(rows.map((r) => r.uri));
      for (const f of check.files) assert.deepEqual(f.problems, [], f.path);
      assert.equal(check.duckdb_count, written.length);
      assert.deepEqual(check.files.flatMap((f) => f.ids).sort(), written.map((w) => w.record.id).sort());

      // Floors: the run covered what it claims to.
      const reasons = tally(entries.map((e) => e.reason as string));
      for (const reason of ['invalid_utf8', 'malformed_json', 'not_an_object', 'missing_field', 'wrong_type', 'lon_out_of_range', 'lat_out_of_range',
        'non_finite_value', 'bad_time', 'bad_geometry', 'too_large', 'unclassified']) {
        assert.ok((reasons.get(reason) ?? 0) >= CASES / 1000, `only ${reasons.get(reason) ?? 0} dead letters for ${reason}`);
      }
      const kept = written.filter((w) => w.record.protoKey).length;
      assert.ok(kept >= CASES / 100, `only ${kept} written records keep a __proto__ key as data`);
      assert.ok(written.filter((w) => w.record.kind === 'vector').length >= CASES / 100, 'features written');
      assert.ok(entries.some((e) => e.payload_base64 !== undefined) && entries.some((e) => e.payload !== undefined));
      console.log(
        `fuzz file: seed ${seed}, ${CASES} cases, ${lines.length} records, ${written.length} written in ${rows.length} objects, ` +
          `${dead.length} dead-lettered ${JSON.stringify(Object.fromEntries(reasons))}, ${kept} with __proto__ kept`,
      );
    }));
});
