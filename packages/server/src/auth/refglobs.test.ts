import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { refGlobsWithinGrants } from './authorize.ts';
import type { Grant, Principal, Scope } from './principal.ts';

const key = (scope: Scope, resources: Grant[]): Principal => ({ kind: 'key', id: 'key_1', name: null, scope, resources, expiresAt: null });
const signed = (resources: Grant[]): Principal => ({ kind: 'signed', id: 'jti_1', org: 'acme', signingKeyId: 'sk_1', scope: 'write', resources, expiresAt: Date.now() + 60_000 });

describe('refGlobsWithinGrants', () => {
  const agent = key('write', [{ org: 'acme', repo: 'app', branches: ['agent-7/*'] }]);
  const refusal = 'this key may only sync branches matching agent-7/*: name them in refs (refs/heads/<branch or one of those patterns>)';

  it('allows the root token any refs, or all of them', () => {
    assert.equal(refGlobsWithinGrants({ kind: 'root' }, 'acme', 'app', null), null);
    assert.equal(refGlobsWithinGrants({ kind: 'root' }, 'acme', 'app', ['refs/heads/**', 'refs/tags/*']), null);
  });

  it('allows a key with a grant not limited to branches every ref, null refs included', () => {
    for (const resources of [[{ org: 'acme' }], [{ org: 'acme', repo: 'app' }], [{ org: 'acme', repo: 'app', branches: ['agent-7/*'] }, { org: 'acme' }]] as Grant[][]) {
      const p = key('write', resources);
      assert.equal(refGlobsWithinGrants(p, 'acme', 'app', null), null);
      assert.equal(refGlobsWithinGrants(p, 'acme', 'app', ['refs/heads/**', 'refs/tags/**']), null);
    }
  });

  it('refuses a branch-limited key a sync of every ref (null refs), saying how to name them', () => {
    assert.equal(refGlobsWithinGrants(agent, 'acme', 'app', null), refusal);
  });

  it('allows a branch-limited key its exact glob', () => {
    assert.equal(refGlobsWithinGrants(agent, 'acme', 'app', ['refs/heads/agent-7/*']), null);
  });

  it('allows a branch-limited key a literal branch its glob matches', () => {
    assert.equal(refGlobsWithinGrants(agent, 'acme', 'app', ['refs/heads/agent-7/fix']), null);
    assert.equal(refGlobsWithinGrants(agent, 'acme', 'app', ['refs/heads/agent-7/fix', 'refs/heads/agent-7/*', 'refs/heads/agent-7/docs']), null);
  });

  it('refuses a branch-limited key a wider glob', () => {
    for (const glob of ['refs/heads/agent-7/**', 'refs/heads/**', 'refs/heads/*', 'refs/heads/agent-?/*', 'refs/heads/agent-*/*']) {
      assert.equal(refGlobsWithinGrants(agent, 'acme', 'app', [glob]), refusal, glob);
    }
  });

  it('refuses a branch-limited key a narrower glob too, since only the glob itself or one branch is checked', () => {
    assert.equal(refGlobsWithinGrants(agent, 'acme', 'app', ['refs/heads/agent-7/fix-*']), refusal);
  });

  it('refuses a branch-limited key any tag', () => {
    for (const ref of ['refs/tags/v1', 'refs/tags/*', 'refs/tags/agent-7/x']) assert.equal(refGlobsWithinGrants(agent, 'acme', 'app', [ref]), refusal, ref);
  });

  it('refuses a branch-limited key another agent\'s branch, a deeper branch, or the bare prefix of its glob', () => {
    for (const ref of ['refs/heads/agent-8/fix', 'refs/heads/main', 'refs/heads/agent-7/a/b', 'refs/heads/agent-7']) {
      assert.equal(refGlobsWithinGrants(agent, 'acme', 'app', [ref]), refusal, ref);
    }
  });

  it('refuses the whole list when one ref is outside the globs', () => {
    assert.equal(refGlobsWithinGrants(agent, 'acme', 'app', ['refs/heads/agent-7/fix', 'refs/heads/main']), refusal);
  });

  it('unions the globs of every grant that covers the repo, and names them all', () => {
    const p = key('write', [{ org: 'acme', repo: 'app', branches: ['agent-7/*'] }, { org: 'acme', branches: ['shared/**'] }, { org: 'acme', repo: 'web', branches: ['web/*'] }]);
    assert.equal(refGlobsWithinGrants(p, 'acme', 'app', ['refs/heads/agent-7/x', 'refs/heads/shared/a/b', 'refs/heads/shared/**']), null);
    assert.equal(refGlobsWithinGrants(p, 'acme', 'app', ['refs/heads/web/x']), 'this key may only sync branches matching agent-7/*, shared/**: name them in refs (refs/heads/<branch or one of those patterns>)');
  });

  it('ignores an unrestricted grant on another repository', () => {
    const p = key('write', [{ org: 'acme', repo: 'app', branches: ['agent-7/*'] }, { org: 'acme', repo: 'web' }, { org: 'evil' }]);
    assert.equal(refGlobsWithinGrants(p, 'acme', 'app', null), refusal);
  });

  it('treats a signed token like a key', () => {
    assert.equal(refGlobsWithinGrants(signed([{ org: 'acme', repo: 'app', branches: ['agent-7/*'] }]), 'acme', 'app', ['refs/heads/agent-7/fix']), null);
    assert.notEqual(refGlobsWithinGrants(signed([{ org: 'acme', repo: 'app', branches: ['agent-7/*'] }]), 'acme', 'app', null), null);
    assert.equal(refGlobsWithinGrants(signed([{ org: 'acme' }]), 'acme', 'app', null), null);
  });

  it('allows a branch-limited key a literal branch exactly when it may push to it (property)', () => {
    const segment = fc.constantFrom('agent-7', 'agent-8', 'fix', 'a', 'main', 'x.y');
    const branch = fc.array(segment, { minLength: 1, maxLength: 3 }).map((parts) => parts.join('/'));
    const glob = fc.constantFrom('agent-7/*', 'agent-7/**', 'main', 'fix', '*', 'a/*/fix');
    fc.assert(fc.property(fc.array(glob, { minLength: 1, maxLength: 3 }), branch, (globs, b) => {
      const p = key('write', [{ org: 'acme', repo: 'app', branches: globs }]);
      const pattern = (g: string): RegExp => new RegExp(`^${g.replace(/\./g, '\\.').replace(/\*\*/g, '\u0000').replace(/\*/g, '[^/]*').replace(/\u0000/g, '.*')}$`);
      const covered = globs.some((g) => pattern(g).test(b));
      assert.equal(refGlobsWithinGrants(p, 'acme', 'app', [`refs/heads/${b}`]) === null, covered);
      for (const g of globs) assert.equal(refGlobsWithinGrants(p, 'acme', 'app', [`refs/heads/${g}`]), null);
    }), { numRuns: 500 });
  });
});
