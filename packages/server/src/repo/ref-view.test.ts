import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { applyChanges, compareRefNames } from './ref-view.ts';

const A = 'a'.repeat(40);
const Z = '0'.repeat(40);

describe('compareRefNames', () => {
  it('orders names as their UTF-8 bytes do (for-each-ref\'s order)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
        assert.equal(Math.sign(compareRefNames(a, b)), Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))));
      }),
    );
  });
});

describe('applyChanges', () => {
  const snapshot = { head: { target: 'refs/heads/main' }, refs: [{ name: 'refs/heads/main', oid: A, peeled: null }, { name: 'refs/tags/v1', oid: A, peeled: A }], hidden: [], digest: 'd0' };

  it('moves, adds and deletes branches in place, keeping the byte order, with a new digest', () => {
    const next = applyChanges(snapshot, [{ ref: 'refs/heads/agent/1', newOid: A }, { ref: 'refs/heads/main', newOid: Z }]);
    assert.deepEqual(next?.refs.map((r) => r.name), ['refs/heads/agent/1', 'refs/tags/v1']);
    assert.notEqual(next?.digest, snapshot.digest);
    assert.equal(next?.head, snapshot.head);
  });

  it('gives up (the view is read again) when a ref outside refs/heads/ is written: it may be a tag to peel', () => {
    assert.equal(applyChanges(snapshot, [{ ref: 'refs/tags/v2', newOid: A }]), null);
  });

  it('applies a deletion anywhere', () => {
    assert.deepEqual(applyChanges(snapshot, [{ ref: 'refs/tags/v1', newOid: Z }])?.refs.map((r) => r.name), ['refs/heads/main']);
  });
});
