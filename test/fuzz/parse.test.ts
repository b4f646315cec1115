/**
 * The parse level of the fuzz suite: parseRecord (scanner and JSON.parse paths) against the
 * oracle on many more hostile payloads than the pipeline runs take, fast; and the dead-letter
 * line of each refused one, which must hold its bytes exactly.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { deadLetterLine } from '../../src/core/dead-letter.js';
import { parseRecord } from '../../src/records/parse.js';
import { fuzzCases } from './cases.js';
import { expectedOutcome } from './oracle.js';
import { assertNoPollution, deadLetterBytes, disagreement, prototypes, seeded, tally } from './support.js';

const MAX_RECORD_BYTES = 64 * 1024;
const RUNS = Number(process.env.FUZZ_PARSE_RUNS ?? 30_000);
const at = { source: 'fuzz.ndjson', partition: 0, offset: 1 };

describe('fuzz: parseRecord against the contract oracle', () => {
  it(`${RUNS} hostile payloads: the oracle's record or one of its reasons, never a throw`, () =>
    seeded('fuzz parse', (seed) => {
      const before = prototypes();
      const tags: string[] = [];
      const outcomes: string[] = [];
      fc.assert(
        fc.property(fuzzCases(MAX_RECORD_BYTES), (c) => {
          tags.push(c.tag.split(':')[0]!);
          const result = parseRecord(c.bytes, at, MAX_RECORD_BYTES);
          const expected = expectedOutcome(c.bytes, MAX_RECORD_BYTES);
          outcomes.push(result.ok ? 'ok' : result.deadLetter.reason);
          const problem = disagreement(c, result, expected);
          if (problem !== undefined) throw new Error(problem);
        }),
        { seed, numRuns: RUNS, includeErrorInReport: true },
      );
      assertNoPollution(before);
      // Floors, so a generator that stopped making some kind of input fails loudly.
      const byOutcome = tally(outcomes);
      for (const reason of ['ok', 'invalid_utf8', 'malformed_json', 'not_an_object', 'missing_field', 'wrong_type', 'lon_out_of_range',
        'lat_out_of_range', 'non_finite_value', 'bad_time', 'bad_geometry', 'too_large']) {
        assert.ok((byOutcome.get(reason) ?? 0) >= RUNS / 1000, `only ${byOutcome.get(reason) ?? 0} cases ended as ${reason}`);
      }
      console.log(`fuzz parse: seed ${seed}, ${RUNS} cases; by kind ${JSON.stringify(Object.fromEntries(tally(tags)))}; by outcome ${JSON.stringify(Object.fromEntries(byOutcome))}`);
    }));

  it('a dead letter line holds the payload byte for byte: payload when UTF-8, payload_base64 when not', () =>
    seeded('fuzz dead-letter line', (seed) => {
      fc.assert(
        fc.property(fuzzCases(MAX_RECORD_BYTES), (c) => {
          const result = parseRecord(c.bytes, at, MAX_RECORD_BYTES);
          if (result.ok) return;
          const entry = JSON.parse(deadLetterLine(result.deadLetter)) as Record<string, unknown>;
          assert.equal(entry.reason, result.deadLetter.reason);
          assert.equal(Buffer.compare(deadLetterBytes(entry), c.bytes), 0, `[${c.tag}] bytes kept`);
        }),
        { seed: seed + 1, numRuns: Math.ceil(RUNS / 8), includeErrorInReport: true },
      );
    }));
});
