import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pollDecision } from './poll.ts';
import { DEFAULT_RULES, type SyncRule } from './rules.ts';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const map = (entries: Record<string, string>) => new Map(Object.entries(entries));
const agentPush: SyncRule[] = [{ refs: 'refs/heads/agent/**', direction: 'push', onDivergence: 'skip', deletions: 'ignore' }, ...DEFAULT_RULES];

describe('pollDecision', () => {
  it('needs nothing when the remote matches the tracking refs', () => {
    assert.equal(pollDecision(DEFAULT_RULES, map({ 'refs/heads/main': A }), map({ 'refs/heads/main': A }), map({ 'refs/heads/main': B })).direction, null);
  });

  it('needs a pull when a pulled ref moved, appeared or went on the remote', () => {
    assert.equal(pollDecision(DEFAULT_RULES, map({ 'refs/heads/main': B }), map({ 'refs/heads/main': A }), map({})).direction, 'pull');
    assert.equal(pollDecision(DEFAULT_RULES, map({ 'refs/heads/new': B }), map({}), map({})).direction, 'pull');
    assert.equal(pollDecision(DEFAULT_RULES, map({}), map({ 'refs/tags/v1': A }), map({})).direction, 'pull');
  });

  it('needs a push when Grove moved a pushed ref since the last agreement, and both when the remote moved too', () => {
    assert.equal(pollDecision(agentPush, map({ 'refs/heads/agent/x': A }), map({ 'refs/heads/agent/x': A }), map({ 'refs/heads/agent/x': B })).direction, 'push');
    assert.equal(pollDecision(agentPush, map({ 'refs/heads/agent/x': A, 'refs/heads/main': B }), map({ 'refs/heads/agent/x': A, 'refs/heads/main': A }), map({ 'refs/heads/agent/x': B })).direction, 'both');
  });

  it('ignores refs no rule covers, in the decision and in the digest', () => {
    const rules: SyncRule[] = [{ refs: 'refs/heads/main', direction: 'pull', onDivergence: 'skip', deletions: 'ignore' }];
    const quiet = pollDecision(rules, map({ 'refs/heads/main': A }), map({ 'refs/heads/main': A }), map({}));
    const noisy = pollDecision(rules, map({ 'refs/heads/main': A, 'refs/heads/other': B }), map({ 'refs/heads/main': A }), map({ 'refs/heads/other': A }));
    assert.equal(noisy.direction, null);
    assert.equal(noisy.digest, quiet.digest);
  });

  it('gives the same digest for the same state and another one when any side of a covered ref changes', () => {
    const state = () => pollDecision(DEFAULT_RULES, map({ 'refs/heads/main': B }), map({ 'refs/heads/main': A }), map({ 'refs/heads/main': A }));
    assert.equal(state().digest, state().digest);
    for (const changed of [
      pollDecision(DEFAULT_RULES, map({ 'refs/heads/main': A }), map({ 'refs/heads/main': A }), map({ 'refs/heads/main': A })),
      pollDecision(DEFAULT_RULES, map({ 'refs/heads/main': B }), map({ 'refs/heads/main': B }), map({ 'refs/heads/main': A })),
      pollDecision(DEFAULT_RULES, map({ 'refs/heads/main': B }), map({ 'refs/heads/main': A }), map({ 'refs/heads/main': B })),
    ]) assert.notEqual(changed.digest, state().digest);
  });
});
