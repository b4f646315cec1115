import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupCommits, partitionKey } from './commits.js';

describe('GroupCommits', () => {
  it('a wanted offset is unconfirmed until the broker stores it, and again when a late older commit moves it back', () => {
    const commits = new GroupCommits();
    assert.equal(commits.wanted, false);
    commits.stored('t', 0, 4);
    assert.deepEqual(commits.unconfirmed(), [], 'what the broker stores alone is nothing to commit');
    commits.want({ source: 't', partition: 0, offset: 10 });
    commits.want({ source: 't', partition: 1, offset: 3 });
    assert.equal(commits.wanted, true);
    assert.deepEqual(commits.unconfirmed(), [{ source: 't', partition: 0, offset: 10 }, { source: 't', partition: 1, offset: 3 }]);
    commits.stored('t', 0, 10);
    commits.stored('t', 1, 7);
    assert.deepEqual(commits.unconfirmed(), []);
    // A commit that timed out, retried by kafkajs after a broker restart, lands late with older offsets.
    commits.stored('t', 0, 3);
    assert.deepEqual(commits.unconfirmed(), [{ source: 't', partition: 0, offset: 10 }]);
    commits.forget(partitionKey('t', 0));
    assert.deepEqual(commits.unconfirmed(), []);
    commits.forget(partitionKey('t', 1));
    assert.equal(commits.wanted, false);
  });
});
