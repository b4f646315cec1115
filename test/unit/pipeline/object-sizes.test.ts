import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ObjectSizeReport } from '../../../src/pipeline/object-sizes.js';
import { compileTemplate } from '../../../src/stages/object-key.js';

describe('ObjectSizeReport', () => {
  const template = compileTemplate('{dataset}/{year}/{month}/{day}');

  it('names the segment with the most values among the small objects', () => {
    const report = new ObjectSizeReport();
    for (let day = 1; day <= 28; day++) report.record('hot', template, `noaa/2024/03/${String(day).padStart(2, '0')}`, 40, 'end');
    const [warning, ...rest] = report.warnings();
    assert.equal(rest.length, 0);
    assert.match(warning!, /^tier hot wrote 28 objects and 28 of them hold fewer than 1,000 rows \(40 rows on average\)/);
    assert.match(warning!, /splits them by its segment \{day\} \(28 values in this run\)\. Drop that segment, e\.g\. file_organization: "\{dataset\}\/\{year\}\/\{month\}"/);
  });

  it('blames the batch age when no segment splits the data', () => {
    const report = new ObjectSizeReport();
    for (let i = 0; i < 30; i++) report.record('warm', template, 'noaa/2024/03/01', 12, 'age');
    assert.match(report.warnings()[0]!, /batch\.max_age flushes batches before they fill/);
  });

  it('stays quiet when most objects are large, or when there are only a few', () => {
    const report = new ObjectSizeReport();
    for (let i = 0; i < 30; i++) report.record('hot', template, `noaa/2024/03/${i}`, i < 14 ? 10 : 50_000, 'rows');
    for (let i = 0; i < 5; i++) report.record('cold', template, `noaa/2024/03/${i}`, 10, 'end');
    assert.deepEqual(report.warnings(), []);
  });
});
