import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Limiter, LimiterTimeoutError } from './limiter.ts';

describe('Limiter', () => {
  it('queues callers beyond the limit and lets them in as slots free, in order', async () => {
    const limiter = new Limiter(2);
    const order: number[] = [];
    const a = await limiter.acquire();
    const b = await limiter.acquire();
    const waiting = [limiter.acquire().then((r) => (order.push(3), r)), limiter.acquire().then((r) => (order.push(4), r))];
    assert.equal(limiter.queued, 2);
    a();
    const c = await waiting[0]!;
    b();
    const d = await waiting[1]!;
    assert.deepEqual(order, [3, 4]);
    assert.equal(limiter.running, 2);
    c();
    d();
    assert.equal(limiter.running, 0);
  });

  it('gives a waiter a timeout error and forgets it', async () => {
    const limiter = new Limiter(1);
    const hold = await limiter.acquire();
    await assert.rejects(limiter.acquire(20), LimiterTimeoutError);
    assert.equal(limiter.queued, 0);
    hold();
    assert.equal(limiter.running, 0);
  });

  it('ignores a second release', async () => {
    const limiter = new Limiter(1);
    const release = await limiter.acquire();
    release();
    release();
    assert.equal(limiter.running, 0);
  });
});
