import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { FairShare, FairShareRefusal } from './fair-share.ts';

const limits = { perKey: 2, queuedPerKey: 2, perOrg: 3, queuedPerOrg: 10, queueTimeoutMs: 60_000 };

describe('FairShare', () => {
  it('runs up to its limit for one key at once and queues the next ones in order', async () => {
    const share = new FairShare(limits);
    const first = await share.enter('k1', 'acme');
    await share.enter('k1', 'acme');
    const order: string[] = [];
    const third = share.enter('k1', 'acme').then((release) => (order.push('third'), release));
    const fourth = share.enter('k1', 'acme').then((release) => (order.push('fourth'), release));
    await tick();
    assert.deepEqual(order, []);
    assert.deepEqual(share.snapshot().keys.get('k1'), { running: 2, queued: 2 });
    first();
    (await third)();
    await fourth;
    assert.deepEqual(order, ['third', 'fourth']);
  });

  it('refuses a key over its queue limit at once, with a retryable refusal, without touching other keys', async () => {
    const refused: string[] = [];
    const share = new FairShare(limits, (key) => refused.push(key));
    await share.enter('runaway', 'acme');
    await share.enter('runaway', 'acme');
    void share.enter('runaway', 'acme');
    void share.enter('runaway', 'acme');
    await assert.rejects(share.enter('runaway', 'acme'), (error: unknown) => error instanceof FairShareRefusal && error.retryAfterSeconds === 1 && /this credential/.test(error.message));
    assert.deepEqual(refused, ['runaway']);
    // the org still has a slot, and another key of the org gets it at once
    const other = await share.enter('polite', 'acme');
    other();
  });

  it('gives a freed org slot to the first waiter whose own key has room, skipping a runaway key at its limit', async () => {
    const share = new FairShare({ ...limits, perKey: 2, perOrg: 2 });
    const a = await share.enter('runaway', 'acme');
    await share.enter('runaway', 'acme');
    const runawayWaits = share.enter('runaway', 'acme');
    let politeIn = false;
    const polite = share.enter('polite', 'acme').then((release) => ((politeIn = true), release));
    await tick();
    assert.equal(politeIn, false, 'the org is full');
    a(); // the runaway gives back a slot: it goes to... the runaway's waiter first in line, whose key now has room
    await runawayWaits;
    assert.equal(politeIn, false);
    assert.deepEqual(share.snapshot().orgs.get('acme'), { running: 2, queued: 1 });
    void polite;
  });

  it('refuses a request that waited longer than the queue timeout', async () => {
    const share = new FairShare({ ...limits, perKey: 1, queueTimeoutMs: 20 });
    await share.enter('k', 'acme');
    await assert.rejects(share.enter('k', 'acme'), (error: unknown) => error instanceof FairShareRefusal && /waited 20 ms/.test(error.message));
    assert.deepEqual(share.snapshot().keys.get('k'), { running: 1, queued: 0 });
  });

  it('caps an org across its keys, and forgets keys and orgs once idle', async () => {
    const share = new FairShare({ ...limits, perKey: 5, perOrg: 2, queuedPerOrg: 0 });
    const one = await share.enter('a', 'acme');
    const two = await share.enter('b', 'acme');
    await assert.rejects(share.enter('c', 'acme'), /org acme/);
    const elsewhere = await share.enter('c', 'globex');
    for (const release of [one, two, elsewhere]) release();
    assert.equal(share.snapshot().keys.size, 0);
    assert.equal(share.snapshot().orgs.size, 0);
  });
});
