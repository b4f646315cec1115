/**
 * Dead letters exactly once, by source position, across a kill -9: a worker killed right after a
 * dead-letter flush was durable (before its records were acknowledged) redelivers those records,
 * and the sink skips the positions it already holds. Kafka (two workers, a dead-letter topic) and
 * the file replay (a dead-letter file).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { SqliteCatalog } from '../../src/catalog/sqlite.js';
import { writeSample } from '../../src/records/sample.js';
import { tempDir } from '../support/fixtures.js';
import { deadLetters, killWorkers, startWorker } from '../support/kafka.js';
import { assertExactlyOnce, drained, joined, loadTopic, scenario, stop } from '../support/kafka-scenario.js';
import { peakRssMiB } from '../support/outage.js';
import { checkParquet } from '../support/python.js';

describe('fault: dead letters exactly once across a kill -9', () => {
  afterEach(killWorkers);

  it('Kafka, two workers, one killed after a dead-letter flush and restarted: each bad record once in the topic, 0 lost, 0 duplicated', async () => {
    const started = Date.now();
    const s = scenario('dl-once');
    await loadTopic(s);
    const a = startWorker('pipelines/kafka.yaml', { ...s.env, EARTHMEM_FAILPOINT: 'dead_letter.flushed' });
    const b = startWorker('pipelines/kafka.yaml', s.env);
    const code = await a.exited;
    assert.equal(code, null, `the first worker is killed at its first dead-letter flush: ${a.output().slice(-2000)}`);
    const beforeRestart = deadLetters(s.env.EARTHMEM_DEAD_LETTER_TOPIC).length;
    assert.ok(beforeRestart > 0, 'dead letters were durable when the worker was killed');
    const killedAt = Date.now();
    const a2 = startWorker('pipelines/kafka.yaml', s.env);
    await joined(a2);
    await drained(s, b, a2);
    const peak = Math.max(peakRssMiB(b.child.pid!), peakRssMiB(a2.child.pid!));
    await stop(b, a2);
    const figures = await assertExactlyOnce(s);
    const messages = deadLetters(s.env.EARTHMEM_DEAD_LETTER_TOPIC).length;
    console.log(
      `dead letters once (Kafka): records in ${figures.recordsIn}, written ${figures.written}, lost ${figures.lost}, duplicated ${figures.duplicated}; ` +
        `dead-lettered ${figures.deadLettered} positions in ${messages} messages (${beforeRestart} before the kill); ` +
        `peak RSS ${peak} MiB; drained ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill, ${((Date.now() - started) / 1000).toFixed(1)} s in all`,
    );
  });

  it('file replay killed after a dead-letter flush and run again: each bad line once in the dead-letter file, every valid record once', async () => {
    const dir = tempDir('dl-once-file');
    const input = join(dir, 'in.ndjson');
    const sample = await writeSample(input, { points: 60_000, features: 100, badCopies: 3, seed: 5 });
    const pipeline = join(dir, 'pipeline.yaml');
    writeFileSync(pipeline, readFileSync('pipelines/demo.yaml', 'utf8').replace('max_rows: 50000', 'max_rows: 2000'));
    const data = join(dir, 'data');
    const env = { EARTHMEM_DEMO_INPUT: input, EARTHMEM_DATA: data };
    const deadLetterFile = join(data, 'dead-letter.ndjson');

    const killed = startWorker(pipeline, { ...env, EARTHMEM_FAILPOINT: 'dead_letter.flushed' });
    assert.equal(await killed.exited, null, `the run is killed at its first dead-letter flush: ${killed.output().slice(-2000)}`);
    const beforeRestart = existsSync(deadLetterFile) ? lines(deadLetterFile).length : 0;
    assert.ok(beforeRestart > 0, 'dead letters were durable when the run was killed');

    const again = startWorker(pipeline, env);
    assert.equal(await again.exited, 0, again.output());
    const entries = lines(deadLetterFile).map((l) => JSON.parse(l) as { offset: number; reason: string });
    const positions = new Set(entries.map((e) => e.offset));
    assert.equal(positions.size, sample.bad, 'every bad line dead-lettered');
    assert.equal(entries.length, positions.size, `each position once: ${entries.length} lines for ${positions.size} positions`);

    // A third run over the same input adds nothing: everything is already there.
    const third = startWorker(pipeline, env);
    assert.equal(await third.exited, 0, third.output());
    assert.equal(lines(deadLetterFile).length, entries.length, 'a replay does not dead-letter again');

    const catalog = new SqliteCatalog(join(data, 'catalog.sqlite'));
    const rows = await catalog.list().finally(() => catalog.close());
    const check = checkParquet(rows.map((r) => r.uri));
    const ids = check.files.flatMap((f) => f.ids as string[]);
    assert.equal(ids.length, sample.valid, 'rows');
    assert.equal(new Set(ids).size, sample.valid, 'every valid record once');
    console.log(
      `dead letters once (file): records in ${sample.lines}, written ${ids.length}, lost ${sample.valid - new Set(ids).size}, duplicated ${ids.length - new Set(ids).size}; ` +
        `dead-lettered ${positions.size} positions in ${entries.length} lines (${beforeRestart} before the kill)`,
    );
  });
});

function lines(file: string): string[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0);
}


