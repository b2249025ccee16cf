import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { backoffMs } from './failures.ts';

const SECOND = 1_000;
const HOUR = 3_600_000;
const middle = (): number => 0.5;

describe('backoffMs', () => {
  it('waits 30 s after the first failure at the middle of the jitter', () => {
    assert.equal(backoffMs(1, middle), 30 * SECOND);
  });

  it('doubles with every further failure', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((n) => backoffMs(n, middle)), [30, 60, 120, 240, 480, 960, 1920].map((s) => s * SECOND));
  });

  it('is capped at one hour', () => {
    assert.equal(backoffMs(8, middle), HOUR);
    assert.equal(backoffMs(9, middle), HOUR);
    assert.equal(backoffMs(50, middle), HOUR);
    assert.equal(backoffMs(10_000, middle), HOUR);
  });

  it('treats zero or fewer failures like the first', () => {
    assert.equal(backoffMs(0, middle), 30 * SECOND);
    assert.equal(backoffMs(-3, middle), 30 * SECOND);
  });

  it('jitters by 20 % below and above at the ends of the random range', () => {
    assert.equal(backoffMs(1, () => 0), 24 * SECOND);
    assert.equal(backoffMs(1, () => 0.999999999), 36 * SECOND);
    assert.equal(backoffMs(50, () => 0), 0.8 * HOUR);
    assert.equal(backoffMs(50, () => 0.999999999), 1.2 * HOUR);
  });

  it('asks the random source once per call', () => {
    let calls = 0;
    backoffMs(3, () => {
      calls++;
      return 0.25;
    });
    assert.equal(calls, 1);
  });

  it('uses Math.random by default, staying within the jitter', () => {
    for (let i = 0; i < 100; i++) {
      const ms = backoffMs(2);
      assert.ok(ms >= 48 * SECOND && ms <= 72 * SECOND, String(ms));
    }
  });

  it('stays within ±20 % of 30 s × 2ⁿ⁻¹ capped at an hour, as whole milliseconds (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 100 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (failures, r) => {
      const base = Math.min(HOUR, 30 * SECOND * 2 ** (failures - 1));
      const ms = backoffMs(failures, () => r);
      assert.ok(Number.isInteger(ms));
      assert.ok(ms >= Math.floor(base * 0.8) && ms <= Math.ceil(base * 1.2), `${failures} ${r} ${ms}`);
    }), { numRuns: 1000 });
  });

  it('never waits less after more failures at the same jitter (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 60 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (failures, r) => {
      assert.ok(backoffMs(failures + 1, () => r) >= backoffMs(failures, () => r));
    }), { numRuns: 500 });
  });
});
