import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { orphanKeys } from './store-sweep.ts';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const HOUR = 3600_000;
const now = Date.parse('2026-12-02T12:00:00Z');
const object = (key: string, ageMs: number) => ({ key, size: 1, modifiedAt: new Date(now - ageMs) });

describe('orphanKeys', () => {
  it('takes both files of a pack no row names once they are older than the age', () => {
    assert.deepEqual(orphanKeys([object(`repos/r1/pack-${A}.pack`, 2 * HOUR), object(`repos/r1/pack-${A}.idx`, 2 * HOUR)], new Set(), now, HOUR), [`repos/r1/pack-${A}.pack`, `repos/r1/pack-${A}.idx`]);
  });

  it('keeps a recorded pack, whatever its age', () => {
    assert.deepEqual(orphanKeys([object(`repos/r1/pack-${A}.pack`, 100 * HOUR)], new Set([`r1/${A}`]), now, HOUR), []);
  });

  it('keeps an unrecorded pack younger than the age (its COMMIT may be on its way)', () => {
    assert.deepEqual(orphanKeys([object(`repos/r1/pack-${B}.pack`, HOUR - 1)], new Set(), now, HOUR), []);
  });

  it('judges a pack by its repository too: the same name recorded for another repository does not keep it', () => {
    assert.deepEqual(orphanKeys([object(`repos/r2/pack-${A}.idx`, 2 * HOUR)], new Set([`r1/${A}`]), now, HOUR), [`repos/r2/pack-${A}.idx`]);
  });

  it('leaves alone any object that is not a pack file it knows', () => {
    assert.deepEqual(orphanKeys([object('repos/r1/notes.txt', 9 * HOUR), object(`other/pack-${A}.pack`, 9 * HOUR), object(`repos/r1/pack-${A}.rev`, 9 * HOUR)], new Set(), now, HOUR), []);
  });
});
