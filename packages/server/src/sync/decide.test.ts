import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decidePull, decidePush, needsMergeBase, REF_OUTCOMES, runStatus, type RefSides } from './decide.ts';
import type { Deletions, OnDivergence, SyncDirection, SyncRule } from './rules.ts';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const C = 'c'.repeat(40);
const D = 'd'.repeat(40);

const rule = (overrides: Partial<SyncRule> = {}): SyncRule => ({ refs: 'refs/heads/**', direction: 'both', onDivergence: 'skip', deletions: 'ignore', ...overrides });
const sides = (grove: string | null, tracking: string | null, upstream: string | null, ref = 'refs/heads/main'): RefSides => ({ ref, grove, tracking, upstream });

const DIVERGENCES: readonly OnDivergence[] = ['skip', 'overwrite', 'keep'];
const DELETIONS: readonly Deletions[] = ['ignore', 'propagate'];
const DIRECTIONS: readonly SyncDirection[] = ['pull', 'push', 'both'];
const everyRule = DIVERGENCES.flatMap((onDivergence) => DELETIONS.map((deletions) => rule({ onDivergence, deletions })));

describe('needsMergeBase', () => {
  it('asks for a merge base when a branch is present on both sides with different values', () => {
    assert.equal(needsMergeBase(sides(A, null, B)), true);
    assert.equal(needsMergeBase(sides(A, C, B, 'refs/heads/agent/x')), true);
  });

  it('does not ask when either side is absent', () => {
    assert.equal(needsMergeBase(sides(null, A, B)), false);
    assert.equal(needsMergeBase(sides(A, A, null)), false);
    assert.equal(needsMergeBase(sides(null, null, null)), false);
  });

  it('does not ask when both sides already agree', () => {
    assert.equal(needsMergeBase(sides(A, B, A)), false);
  });

  it('never asks for a tag, which is never fast-forwarded', () => {
    assert.equal(needsMergeBase(sides(A, null, B, 'refs/tags/v1')), false);
  });
});

describe('decidePull', () => {
  it('does nothing when the upstream has not moved since the last agreement (U == T)', () => {
    for (const r of everyRule) {
      assert.deepEqual(decidePull(sides(A, B, B), r, null), { outcome: 'unchanged' });
      assert.deepEqual(decidePull(sides(null, B, B), r, null), { outcome: 'unchanged' });
      assert.deepEqual(decidePull(sides(A, null, null), r, null), { outcome: 'unchanged' });
      assert.deepEqual(decidePull(sides(null, null, null), r, null), { outcome: 'unchanged' });
    }
  });

  it('only forgets the tracking ref when the ref is gone on both sides', () => {
    for (const r of everyRule) assert.deepEqual(decidePull(sides(null, A, null), r, null), { outcome: 'unchanged', tracking: null });
  });

  it('keeps a ref deleted upstream in Grove under deletions ignore, whether or not Grove changed it', () => {
    for (const onDivergence of DIVERGENCES) {
      const r = rule({ onDivergence, deletions: 'ignore' });
      for (const g of [A, B]) {
        assert.deepEqual(decidePull(sides(g, A, null), r, null), { outcome: 'unchanged', tracking: null, message: 'deleted upstream; kept in Grove (deletions: ignore)' });
      }
    }
  });

  it('deletes a ref from Grove under deletions propagate when Grove still has the last agreed value (G == T)', () => {
    for (const onDivergence of DIVERGENCES) {
      assert.deepEqual(decidePull(sides(A, A, null), rule({ onDivergence, deletions: 'propagate' }), null), { outcome: 'deleted', grove: null, tracking: null });
    }
  });

  it('deletes a tag deleted upstream under deletions propagate', () => {
    assert.deepEqual(decidePull(sides(A, A, null, 'refs/tags/v1'), rule({ refs: 'refs/tags/**', deletions: 'propagate' }), null), { outcome: 'deleted', grove: null, tracking: null });
  });

  it('reports a divergence, and keeps the ref, when it was deleted upstream but changed in Grove (G != T)', () => {
    for (const onDivergence of DIVERGENCES) {
      const decision = decidePull(sides(B, A, null), rule({ onDivergence, deletions: 'propagate' }), null);
      assert.deepEqual(decision, { outcome: 'diverged', tracking: null, message: 'deleted upstream but changed in Grove since the last sync; kept in Grove' });
      assert.equal(decision.grove, undefined);
    }
  });

  it('creates a ref in Grove that only the upstream has', () => {
    for (const r of everyRule) {
      assert.deepEqual(decidePull(sides(null, null, A), r, null), { outcome: 'created', grove: A, tracking: A });
      assert.deepEqual(decidePull(sides(null, null, A, 'refs/tags/v1'), r, null), { outcome: 'created', grove: A, tracking: A });
    }
  });

  it('recreates a ref Grove deleted when the upstream moved it since the last agreement', () => {
    assert.deepEqual(decidePull(sides(null, A, B), rule({ deletions: 'propagate' }), null), { outcome: 'created', grove: B, tracking: B });
  });

  it('only records the agreement when Grove already has the upstream value (G == U)', () => {
    for (const r of everyRule) {
      assert.deepEqual(decidePull(sides(A, null, A), r, null), { outcome: 'unchanged', tracking: A });
      assert.deepEqual(decidePull(sides(A, B, A), r, null), { outcome: 'unchanged', tracking: A });
      assert.deepEqual(decidePull(sides(A, B, A, 'refs/tags/v1'), r, null), { outcome: 'unchanged', tracking: A });
    }
  });

  it('fast-forwards Grove when the upstream descends from it (merge base == G)', () => {
    for (const r of everyRule) {
      assert.deepEqual(decidePull(sides(A, A, B), r, A), { outcome: 'updated', grove: B, tracking: B });
      assert.deepEqual(decidePull(sides(A, null, B), r, A), { outcome: 'updated', grove: B, tracking: B });
    }
  });

  it('leaves Grove as it is when Grove is ahead of the upstream (merge base == U)', () => {
    for (const r of everyRule) {
      assert.deepEqual(decidePull(sides(B, A, C), r, C), { outcome: 'unchanged', tracking: C, message: 'Grove is ahead of the remote' });
    }
  });

  it('reports a divergence without touching Grove under onDivergence skip, once for a pull rule and every run for a two-way rule', () => {
    for (const deletions of DELETIONS) {
      assert.deepEqual(decidePull(sides(A, C, B), rule({ direction: 'pull', deletions }), C), { outcome: 'diverged', tracking: B, message: 'both sides changed: not resolved (onDivergence: skip)' });
      assert.deepEqual(decidePull(sides(A, null, B), rule({ direction: 'pull', deletions }), null), { outcome: 'diverged', tracking: B, message: 'both sides changed: not resolved (onDivergence: skip)' });
      // A two-way rule keeps T, so its push side cannot mistake the remote's change for agreement.
      assert.deepEqual(decidePull(sides(A, C, B), rule({ deletions }), C), { outcome: 'diverged', message: 'both sides changed: not resolved (onDivergence: skip)' });
    }
  });

  it('overwrites Grove with the upstream under onDivergence overwrite, backing up the old Grove tip', () => {
    assert.deepEqual(decidePull(sides(A, C, B), rule({ onDivergence: 'overwrite' }), C), { outcome: 'forced', grove: B, tracking: B, backupOfGrove: A });
    assert.deepEqual(decidePull(sides(A, null, B), rule({ onDivergence: 'overwrite' }), null), { outcome: 'forced', grove: B, tracking: B, backupOfGrove: A });
  });

  it('keeps the upstream tip beside Grove\'s under onDivergence keep, leaving Grove as it is', () => {
    const decision = decidePull(sides(A, C, B), rule({ onDivergence: 'keep' }), C);
    assert.deepEqual(decision, { outcome: 'kept', tracking: B, keep: B, message: 'both sides changed: the upstream tip is kept beside it' });
    assert.equal(decision.grove, undefined);
  });

  it('never fast-forwards a tag: a moved tag is a divergence even when the merge base says fast-forward', () => {
    const tags = rule({ refs: 'refs/tags/**' });
    for (const mergeBase of [A, B, null, C]) {
      assert.deepEqual(decidePull(sides(A, A, B, 'refs/tags/v1'), { ...tags, direction: 'pull' }, mergeBase), { outcome: 'diverged', tracking: B, message: 'the tag differs: not resolved (onDivergence: skip)' });
    }
    assert.deepEqual(decidePull(sides(A, A, B, 'refs/tags/v1'), rule({ refs: 'refs/tags/**', onDivergence: 'overwrite' }), A), { outcome: 'forced', grove: B, tracking: B, backupOfGrove: A });
  });

  it('does not fast-forward a ref outside refs/heads/ either', () => {
    assert.equal(decidePull(sides(A, A, B, 'refs/notes/x'), rule(), A).outcome, 'diverged');
  });
});

describe('decidePush', () => {
  it('does nothing when both sides already agree and the tracking ref says so', () => {
    for (const r of everyRule) {
      assert.deepEqual(decidePush(sides(A, A, A), r, null), { outcome: 'unchanged' });
      assert.deepEqual(decidePush(sides(null, null, null), r, null), { outcome: 'unchanged' });
    }
  });

  it('only records the agreement when both sides have the same value but the tracking ref differs', () => {
    assert.deepEqual(decidePush(sides(A, B, A), rule(), null), { outcome: 'unchanged', tracking: A });
    assert.deepEqual(decidePush(sides(A, null, A), rule(), null), { outcome: 'unchanged', tracking: A });
    assert.deepEqual(decidePush(sides(null, A, null), rule(), null), { outcome: 'unchanged', tracking: null });
  });

  it('does not push a deletion of a ref Grove never had', () => {
    for (const r of everyRule) assert.deepEqual(decidePush(sides(null, null, A), r, null), { outcome: 'unchanged' });
  });

  it('deletes a ref on the remote only under deletions propagate and when the remote still has the last agreed value (U == T)', () => {
    assert.deepEqual(decidePush(sides(null, A, A), rule({ deletions: 'propagate' }), null), { outcome: 'deleted', send: { oid: null, lease: A, force: false } });
    assert.deepEqual(decidePush(sides(null, A, A), rule({ deletions: 'ignore' }), null), { outcome: 'unchanged', tracking: null, message: 'deleted in Grove; kept on the remote (deletions: ignore)' });
  });

  it('does not delete on the remote a ref the remote changed since the last agreement', () => {
    for (const r of everyRule) {
      const decision = decidePush(sides(null, A, B), r, null);
      assert.deepEqual(decision, { outcome: 'diverged', message: 'deleted in Grove but changed on the remote since the last sync; not deleted there' });
      assert.equal(decision.send, undefined);
    }
  });

  it('creates a ref on the remote with a lease that says it must not exist', () => {
    for (const r of everyRule) {
      assert.deepEqual(decidePush(sides(A, null, null), r, null), { outcome: 'created', send: { oid: A, lease: null, force: false } });
      assert.deepEqual(decidePush(sides(A, null, null, 'refs/tags/v1'), r, null), { outcome: 'created', send: { oid: A, lease: null, force: false } });
    }
  });

  it('fast-forwards the remote with a lease on its current value when Grove descends from it (merge base == U)', () => {
    for (const r of everyRule) assert.deepEqual(decidePush(sides(B, A, A), r, A), { outcome: 'updated', send: { oid: B, lease: A, force: false } });
  });

  it('sends nothing when the remote is ahead of Grove (merge base == G)', () => {
    for (const r of everyRule) {
      const decision = decidePush(sides(A, A, B), r, A);
      assert.deepEqual(decision, { outcome: 'unchanged', message: 'the remote is ahead of Grove' });
      assert.equal(decision.send, undefined);
    }
  });

  it('force-pushes a divergence under onDivergence overwrite, with the lease on the remote value and a backup of it', () => {
    assert.deepEqual(decidePush(sides(A, C, B), rule({ onDivergence: 'overwrite' }), C), { outcome: 'forced', send: { oid: A, lease: B, force: true }, backupOfRemote: B });
  });

  it('reports a divergence without pushing under onDivergence skip or keep', () => {
    for (const onDivergence of ['skip', 'keep'] as const) {
      assert.deepEqual(decidePush(sides(A, C, B), rule({ onDivergence }), C), { outcome: 'diverged', message: `both sides changed: not pushed (onDivergence: ${onDivergence})` });
    }
  });

  it('never fast-forwards a tag on the remote: a moved tag is a divergence', () => {
    const tags = rule({ refs: 'refs/tags/**' });
    assert.deepEqual(decidePush(sides(B, A, A, 'refs/tags/v1'), tags, A), { outcome: 'diverged', message: 'the tag differs on the remote: not pushed (onDivergence: skip)' });
    assert.deepEqual(decidePush(sides(B, A, A, 'refs/tags/v1'), rule({ refs: 'refs/tags/**', onDivergence: 'overwrite' }), A), { outcome: 'forced', send: { oid: B, lease: A, force: true }, backupOfRemote: A });
  });
});

describe('a branch rewound on one side since the last sync', () => {
  // B descends from A; the merge base of A and B is A.
  const mirror = rule({ direction: 'pull', onDivergence: 'overwrite', deletions: 'propagate' });

  it('is followed by a mirror when the remote rewound it (G == T == B, U == A)', () => {
    assert.deepEqual(decidePull(sides(B, B, A), mirror, A), { outcome: 'forced', grove: A, tracking: A, backupOfGrove: B });
  });

  it('is reported, not silently re-pushed, when the remote rewound it under onDivergence skip', () => {
    const both = rule({ direction: 'both' });
    const pull = decidePull(sides(B, B, A), both, A);
    assert.equal(pull.outcome, 'diverged');
    assert.match(pull.message ?? '', /the remote moved the branch back/);
    // T stays at B (sync-run pushes no ref its pull left diverged): the next run reports it again rather than re-pushing B.
    assert.equal(pull.tracking, undefined);
    assert.equal(decidePull(sides(B, B, A), both, A).outcome, 'diverged');
  });

  it('is force-pushed under onDivergence overwrite when Grove rewound it (G == A, T == U == B)', () => {
    assert.deepEqual(decidePush(sides(A, B, B), rule({ direction: 'push', onDivergence: 'overwrite' }), A), { outcome: 'forced', send: { oid: A, lease: B, force: true }, backupOfRemote: B });
  });

  it('is reported when Grove rewound it under onDivergence skip (G == A, T == U == B)', () => {
    assert.equal(decidePush(sides(A, B, B), rule({ direction: 'push' }), A).outcome, 'diverged');
  });
});

describe('runStatus', () => {
  it('is succeeded when no ref needs attention', () => {
    assert.equal(runStatus([]), 'succeeded');
    assert.equal(runStatus(['created', 'updated', 'forced', 'deleted', 'unchanged', 'filtered', 'kept']), 'succeeded');
  });

  it('is partial as soon as one ref diverged, was rejected, went stale or failed', () => {
    for (const bad of ['diverged', 'rejected', 'stale', 'failed'] as const) {
      assert.equal(runStatus([bad]), 'partial');
      assert.equal(runStatus(['created', 'unchanged', bad, 'updated']), 'partial');
    }
  });

  it('knows every outcome', () => {
    for (const outcome of REF_OUTCOMES) assert.ok(['succeeded', 'partial'].includes(runStatus([outcome])));
  });
});

describe('decide (properties)', () => {
  const oid = fc.constantFrom(A, B, C, D);
  const side = fc.option(oid, { nil: null });
  const ref = fc.constantFrom('refs/heads/main', 'refs/heads/agent/x', 'refs/tags/v1', 'refs/tags/release/2');
  const anyRule = fc.record({
    refs: fc.constant('refs/**'),
    direction: fc.constantFrom(...DIRECTIONS),
    onDivergence: fc.constantFrom(...DIVERGENCES),
    deletions: fc.constantFrom(...DELETIONS),
  });
  // The merge base git would plausibly answer: G, U, another commit, or none (unrelated histories).
  const input = fc.record({ ref, grove: side, tracking: side, upstream: side, base: fc.constantFrom('grove', 'upstream', 'other', 'none') as fc.Arbitrary<'grove' | 'upstream' | 'other' | 'none'> });
  const mergeBaseOf = (s: RefSides, base: 'grove' | 'upstream' | 'other' | 'none'): string | null => {
    if (!needsMergeBase(s)) return null;
    return base === 'grove' ? s.grove : base === 'upstream' ? s.upstream : base === 'other' ? D : null;
  };

  it('never deletes a ref from Grove on a pull unless deletions is propagate and Grove had the last agreed value', () => {
    fc.assert(fc.property(input, anyRule, ({ base, ...s }, r) => {
      const decision = decidePull(s, r, mergeBaseOf(s, base));
      if (decision.grove === null) {
        assert.equal(r.deletions, 'propagate');
        assert.notEqual(s.grove, null);
        assert.equal(s.grove, s.tracking);
        assert.equal(s.upstream, null);
        assert.equal(decision.outcome, 'deleted');
      }
    }), { numRuns: 3000 });
  });

  it('under onDivergence skip, changes Grove on a pull only by a creation, a branch fast-forward or a propagated deletion', () => {
    fc.assert(fc.property(input, anyRule, ({ base, ...s }, r) => {
      const skip = { ...r, onDivergence: 'skip' as const };
      const mergeBase = mergeBaseOf(s, base);
      const decision = decidePull(s, skip, mergeBase);
      if (decision.grove === undefined || decision.grove === s.grove) return;
      if (decision.grove === null) {
        assert.equal(decision.outcome, 'deleted');
        return;
      }
      const created = s.grove === null;
      const fastForward = s.ref.startsWith('refs/heads/') && mergeBase === s.grove;
      assert.ok(created || fastForward, JSON.stringify({ s, mergeBase, decision }));
      assert.equal(decision.outcome, created ? 'created' : 'updated');
      assert.equal(decision.grove, s.upstream);
    }), { numRuns: 3000 });
  });

  it('never overwrites Grove\'s value with anything but the upstream\'s', () => {
    fc.assert(fc.property(input, anyRule, ({ base, ...s }, r) => {
      const decision = decidePull(s, r, mergeBaseOf(s, base));
      if (decision.grove !== undefined && decision.grove !== null) assert.equal(decision.grove, s.upstream);
      if (decision.tracking !== undefined) assert.equal(decision.tracking, s.upstream);
    }), { numRuns: 2000 });
  });

  it('leases every push on the remote value it was given', () => {
    fc.assert(fc.property(input, anyRule, ({ base, ...s }, r) => {
      const decision = decidePush(s, r, mergeBaseOf(s, base));
      if (decision.send !== undefined) {
        assert.equal(decision.send.lease, s.upstream);
        assert.equal(decision.send.oid, s.grove);
        assert.notEqual(s.grove, s.upstream);
      }
    }), { numRuns: 3000 });
  });

  it('forces a push only under onDivergence overwrite, and never for a creation or a deletion', () => {
    fc.assert(fc.property(input, anyRule, ({ base, ...s }, r) => {
      const decision = decidePush(s, r, mergeBaseOf(s, base));
      if (decision.send?.force === true) {
        assert.equal(r.onDivergence, 'overwrite');
        assert.notEqual(s.grove, null);
        assert.notEqual(s.upstream, null);
        assert.equal(decision.outcome, 'forced');
      }
    }), { numRuns: 3000 });
  });

  it('names a backup of the replaced value whenever onDivergence overwrite replaces one that is not an ancestor', () => {
    fc.assert(fc.property(input, anyRule, ({ base, ...s }, r) => {
      const overwrite = { ...r, onDivergence: 'overwrite' as const };
      const mergeBase = mergeBaseOf(s, base);
      const pull = decidePull(s, overwrite, mergeBase);
      if (pull.grove !== undefined && pull.grove !== null && s.grove !== null && pull.grove !== s.grove && pull.outcome !== 'updated') {
        assert.equal(pull.outcome, 'forced');
        assert.equal(pull.backupOfGrove, s.grove);
      }
      if (pull.outcome === 'forced') assert.equal(pull.backupOfGrove, s.grove);
      if (pull.backupOfGrove !== undefined) assert.equal(pull.outcome, 'forced');
      const push = decidePush(s, overwrite, mergeBase);
      if (push.send?.force === true) assert.equal(push.backupOfRemote, s.upstream);
      if (push.outcome === 'forced') assert.equal(push.backupOfRemote, s.upstream);
      if (push.backupOfRemote !== undefined) assert.equal(push.send?.force, true);
    }), { numRuns: 3000 });
  });

  it('only fast-forwards a branch whose new value descends from the old one', () => {
    fc.assert(fc.property(input, anyRule, ({ base, ...s }, r) => {
      const mergeBase = mergeBaseOf(s, base);
      const pull = decidePull(s, r, mergeBase);
      if (pull.outcome === 'updated') {
        assert.ok(s.ref.startsWith('refs/heads/'));
        assert.equal(mergeBase, s.grove);
      }
      const push = decidePush(s, r, mergeBase);
      if (push.outcome === 'updated') {
        assert.ok(s.ref.startsWith('refs/heads/'));
        assert.equal(mergeBase, s.upstream);
      }
    }), { numRuns: 2000 });
  });

  it('produces only known outcomes, and never touches either side when every side agrees', () => {
    fc.assert(fc.property(input, anyRule, ({ base, ...s }, r) => {
      const mergeBase = mergeBaseOf(s, base);
      const pull = decidePull(s, r, mergeBase);
      const push = decidePush(s, r, mergeBase);
      assert.ok(REF_OUTCOMES.includes(pull.outcome));
      assert.ok(REF_OUTCOMES.includes(push.outcome));
      if (s.grove === s.tracking && s.tracking === s.upstream) {
        assert.deepEqual(pull, { outcome: 'unchanged' });
        assert.deepEqual(push, { outcome: 'unchanged' });
      }
    }), { numRuns: 2000 });
  });

  // A small commit graph: a commit's id is its path from a root ('r' or 's'), so x is an
  // ancestor of y when y starts with x, and the merge base is the longest common prefix.
  const COMMITS = ['r', 'ra', 'rb', 'raa', 'rab', 'rba', 's', 'sa'] as const;
  const graphBase = (x: string, y: string): string | null => {
    let i = 0;
    while (i < x.length && i < y.length && x[i] === y[i]) i++;
    return i === 0 ? null : x.slice(0, i);
  };
  const mergeBaseIn = (s: RefSides): string | null => (needsMergeBase(s) ? graphBase(s.grove!, s.upstream!) : null);
  const commit = fc.option(fc.constantFrom(...COMMITS), { nil: null });
  const bothRule = fc.record({ ref: ref, onDivergence: fc.constantFrom(...DIVERGENCES), deletions: fc.constantFrom(...DELETIONS) })
    .filter(({ ref: r, onDivergence }) => onDivergence !== 'keep' || r.startsWith('refs/heads/'))
    .map(({ ref: r, onDivergence, deletions }) => ({ ref: r, rule: rule({ refs: 'refs/**', direction: 'both', onDivergence, deletions }) }));

  /** One run over one ref as sync-run applies it, every push accepted: pull, then push over what the pull left (unless the pull left it diverged or kept). */
  function run(state: RefSides, r: SyncRule): { state: RefSides; outcomes: string[] } {
    let { grove, tracking, upstream } = state;
    const pull = decidePull(state, r, mergeBaseIn(state));
    if (pull.grove !== undefined) grove = pull.grove;
    if (pull.tracking !== undefined) tracking = pull.tracking;
    // sync-run never pushes a ref its pull left diverged or kept.
    if (pull.outcome === 'diverged' || pull.outcome === 'kept') return { state: { ref: state.ref, grove, tracking, upstream }, outcomes: [pull.outcome] };
    const afterPull = { ref: state.ref, grove, tracking, upstream };
    const push = decidePush(afterPull, r, mergeBaseIn(afterPull));
    if (push.send !== undefined) {
      upstream = push.send.oid;
      tracking = push.send.oid;
    } else if (push.tracking !== undefined) tracking = push.tracking;
    return { state: { ref: state.ref, grove, tracking, upstream }, outcomes: [pull.outcome, push.outcome] };
  }

  /** One side moved its branch back to an ancestor while the other stayed at the last agreed value. */
  const rewound = ({ ref: r, grove, tracking, upstream }: RefSides): boolean =>
    r.startsWith('refs/heads/') && grove !== null && upstream !== null && grove !== upstream &&
    ((grove === tracking && grove.startsWith(upstream)) || (upstream === tracking && upstream.startsWith(grove)));

  it('brings both sides of a two-way rule to agree within two runs, unless a run reports a divergence (property)', () => {
    fc.assert(fc.property(bothRule, commit, commit, commit, ({ ref: r, rule: theRule }, grove, tracking, upstream) => {
      let state: RefSides = { ref: r, grove, tracking, upstream };
      const seen: string[] = [];
      for (let i = 0; i < 2; i++) {
        const next = run(state, theRule);
        seen.push(...next.outcomes);
        state = next.state;
      }
      if (seen.includes('diverged') || seen.includes('kept')) return;
      assert.equal(state.grove, state.upstream, JSON.stringify({ start: { grove, tracking, upstream }, theRule, state, seen }));
      assert.equal(state.tracking, state.grove, JSON.stringify({ start: { grove, tracking, upstream }, theRule, state, seen }));
    }), { numRuns: 3000 });
  });

  it('brings both sides of a two-way rule to agree within two runs when neither side rewound a branch, unless a run reports a divergence (property)', () => {
    fc.assert(fc.property(bothRule, commit, commit, commit, ({ ref: r, rule: theRule }, grove, tracking, upstream) => {
      let state: RefSides = { ref: r, grove, tracking, upstream };
      fc.pre(!rewound(state));
      const seen: string[] = [];
      for (let i = 0; i < 2; i++) {
        const next = run(state, theRule);
        seen.push(...next.outcomes);
        state = next.state;
      }
      if (seen.includes('diverged') || seen.includes('kept')) return;
      assert.equal(state.grove, state.upstream, JSON.stringify({ start: { grove, tracking, upstream }, theRule, state, seen }));
      assert.equal(state.tracking, state.grove, JSON.stringify({ start: { grove, tracking, upstream }, theRule, state, seen }));
    }), { numRuns: 3000 });
  });

  it('leaves agreeing sides alone on every later run (property)', () => {
    fc.assert(fc.property(bothRule, commit, ({ ref: r, rule: theRule }, value) => {
      const state: RefSides = { ref: r, grove: value, tracking: value, upstream: value };
      assert.deepEqual(run(state, theRule), { state, outcomes: ['unchanged', 'unchanged'] });
    }), { numRuns: 300 });
  });

  it('never loses a commit under onDivergence overwrite: what a run replaces or deletes is an ancestor of the new value, backed up, or the last agreed value (property)', () => {
    fc.assert(fc.property(bothRule, commit, commit, commit, ({ ref: r, rule: theRule }, grove, tracking, upstream) => {
      const overwrite = { ...theRule, onDivergence: 'overwrite' as const };
      const sidesNow: RefSides = { ref: r, grove, tracking, upstream };
      const pull = decidePull(sidesNow, overwrite, mergeBaseIn(sidesNow));
      if (pull.grove !== undefined && grove !== null && pull.grove !== grove) {
        const ancestor = pull.grove !== null && r.startsWith('refs/heads/') && pull.grove.startsWith(grove);
        assert.ok(ancestor || pull.backupOfGrove === grove || grove === tracking, JSON.stringify({ sidesNow, pull }));
      }
      const afterPull: RefSides = { ref: r, grove: pull.grove !== undefined ? pull.grove : grove, tracking: pull.tracking !== undefined ? pull.tracking : tracking, upstream };
      const push = decidePush(afterPull, overwrite, mergeBaseIn(afterPull));
      if (push.send !== undefined && upstream !== null) {
        const ancestor = push.send.oid !== null && r.startsWith('refs/heads/') && push.send.oid.startsWith(upstream);
        assert.ok(ancestor || push.backupOfRemote === upstream || upstream === afterPull.tracking, JSON.stringify({ afterPull, push }));
      }
    }), { numRuns: 3000 });
  });
});

