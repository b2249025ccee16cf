import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decideRange, notModified, rangeApplies } from './range.ts';

describe('Range, If-None-Match and If-Range', () => {
  it('serves one satisfiable range, clamped to the end', () => {
    assert.deepEqual(decideRange('bytes=2-5', 10), { kind: 'partial', start: 2, end: 5 });
    assert.deepEqual(decideRange('bytes=5-', 10), { kind: 'partial', start: 5, end: 9 });
    assert.deepEqual(decideRange('bytes=5-100', 10), { kind: 'partial', start: 5, end: 9 });
    assert.deepEqual(decideRange('bytes=-3', 10), { kind: 'partial', start: 7, end: 9 });
    assert.deepEqual(decideRange('bytes=-30', 10), { kind: 'partial', start: 0, end: 9 });
  });

  it('is unsatisfiable when the range starts at or past the end', () => {
    for (const header of ['bytes=10-', 'bytes=10-20', 'bytes=200-', 'bytes=-0']) assert.deepEqual(decideRange(header, 10), { kind: 'unsatisfiable' }, header);
    assert.deepEqual(decideRange('bytes=0-', 0), { kind: 'unsatisfiable' });
    assert.deepEqual(decideRange('bytes=-5', 0), { kind: 'unsatisfiable' });
  });

  it('ignores malformed headers, other units, reversed ranges and multiple ranges', () => {
    for (const header of [undefined, '', 'bytes=', 'bytes=-', 'items=0-1', 'bytes=5-2', 'bytes=0-1,4-5', 'bytes=a-b', 'bytes 0-1']) {
      assert.deepEqual(decideRange(header, 10), { kind: 'full' }, String(header));
    }
  });

  it('matches If-None-Match weakly, lists and * included', () => {
    assert.equal(notModified('"abc"', '"abc"'), true);
    assert.equal(notModified('W/"abc"', '"abc"'), true);
    assert.equal(notModified('"x", "abc"', '"abc"'), true);
    assert.equal(notModified('*', '"abc"'), true);
    assert.equal(notModified('"abd"', '"abc"'), false);
    assert.equal(notModified(undefined, '"abc"'), false);
  });

  it('applies a range under If-Range only for the same strong ETag', () => {
    assert.equal(rangeApplies(undefined, '"abc"'), true);
    assert.equal(rangeApplies('"abc"', '"abc"'), true);
    assert.equal(rangeApplies('W/"abc"', '"abc"'), false);
    assert.equal(rangeApplies('"old"', '"abc"'), false);
  });
});
