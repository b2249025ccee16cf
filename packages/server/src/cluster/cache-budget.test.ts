import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chooseEvictions, type CachedCopy } from './cache-budget.ts';

const copy = (id: string, bytes: number, lastUsed: number, users = 0): CachedCopy => ({ id, bytes, lastUsed, users });

describe('chooseEvictions', () => {
  it('evicts nothing while the copies fit the budget', () => {
    assert.deepEqual(chooseEvictions([copy('a', 40, 1), copy('b', 60, 2)], 100, 1000, 0), []);
  });

  it('evicts the least recently used copies until the rest fit', () => {
    assert.deepEqual(chooseEvictions([copy('new', 50, 30), copy('old', 50, 10), copy('mid', 50, 20)], 100, 1000, 0), ['old']);
    assert.deepEqual(chooseEvictions([copy('new', 50, 30), copy('old', 50, 10), copy('mid', 50, 20)], 40, 1000, 0), ['old', 'mid', 'new']);
  });

  it('never evicts a copy in use or used within the idle time, even over budget', () => {
    assert.deepEqual(chooseEvictions([copy('serving', 80, 10, 1), copy('recent', 80, 990), copy('idle', 80, 500)], 100, 1000, 60), ['idle']);
    assert.deepEqual(chooseEvictions([copy('serving', 300, 10, 2)], 100, 1000, 0), []);
  });

  it('takes the bigger of two copies last used at the same moment first', () => {
    assert.deepEqual(chooseEvictions([copy('small', 10, 5), copy('big', 90, 5)], 50, 1000, 0), ['big']);
  });
});
