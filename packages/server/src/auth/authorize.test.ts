import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { authorize, authorizeRefUpdate, needsAncestry, type Resource, type RefRule } from './authorize.ts';
import { SCOPES, type Grant, type Principal, type Scope } from './principal.ts';

const key = (scope: Scope, resources: Grant[]): Principal => ({ kind: 'key', id: 'key_1', name: null, scope, resources, expiresAt: null });
const repo = (org: string, name: string): Resource => ({ kind: 'repo', org, repo: name });

describe('authorize', () => {
  it('allows the root token everything', () => {
    for (const action of SCOPES) {
      for (const resource of [{ kind: 'server' } as const, { kind: 'org', org: 'x' } as const, repo('x', 'y')]) {
        assert.deepEqual(authorize({ kind: 'root' }, action, resource), { allowed: true });
      }
    }
  });

  it('hides repositories outside a key\'s resources as not found', () => {
    const decision = authorize(key('admin', [{ org: 'acme', repo: 'app' }]), 'read', repo('acme', 'other'));
    assert.equal(decision.allowed, false);
    assert.equal(!decision.allowed && decision.status, 'not_found');
    assert.equal(!authorize(key('admin', [{ org: 'acme' }]), 'read', repo('evil', 'app')).allowed && 'x', 'x');
  });

  it('forbids a read key to write a repository it can see, saying why', () => {
    const decision = authorize(key('read', [{ org: 'acme' }]), 'write', repo('acme', 'app'));
    assert.deepEqual(decision, { allowed: false, status: 'forbidden', reason: 'this key has scope read; write access is needed' });
  });

  it('lets org administration only to an admin grant on the whole org', () => {
    assert.equal(authorize(key('admin', [{ org: 'acme' }]), 'admin', { kind: 'org', org: 'acme' }).allowed, true);
    assert.equal(authorize(key('admin', [{ org: 'acme', repo: 'app' }]), 'admin', { kind: 'org', org: 'acme' }).allowed, false);
    assert.equal(authorize(key('admin', [{ org: 'acme', branches: ['a/*'] }]), 'admin', { kind: 'org', org: 'acme' }).allowed, false);
    assert.equal(authorize(key('write', [{ org: 'acme' }]), 'admin', { kind: 'org', org: 'acme' }).allowed, false);
    assert.equal(authorize(key('read', [{ org: 'acme', repo: 'app' }]), 'read', { kind: 'org', org: 'acme' }).allowed, true);
  });

  it('keeps the server level (orgs) for the root token', () => {
    for (const scope of SCOPES) assert.equal(authorize(key(scope, [{ org: 'acme' }]), 'admin', { kind: 'server' }).allowed, false);
  });

  const names = fc.constantFrom('acme', 'evil', 'app', 'web');
  const grant = fc.record({ org: names, repo: fc.option(names, { nil: undefined }) }).map((g) => (g.repo === undefined ? { org: g.org } : { org: g.org, repo: g.repo }));
  const principal = fc.record({ scope: fc.constantFrom(...SCOPES), resources: fc.array(grant, { minLength: 1, maxLength: 3 }) }).map(({ scope, resources }) => key(scope, resources));

  it('never allows a key anything on a repository none of its grants covers (property)', () => {
    fc.assert(fc.property(principal, fc.constantFrom(...SCOPES), names, names, (p, action, org, name) => {
      const covered = p.kind === 'key' && p.resources.some((g) => g.org === org && (g.repo === undefined || g.repo === name));
      const decision = authorize(p, action, repo(org, name));
      if (!covered) assert.equal(!decision.allowed && decision.status, 'not_found');
      else assert.equal(decision.allowed, p.kind === 'key' && SCOPES.indexOf(p.scope) >= SCOPES.indexOf(action));
    }), { numRuns: 2000 });
  });

  it('is monotonic in scope: what a lower scope may do, a higher may too (property)', () => {
    fc.assert(fc.property(fc.array(grant, { minLength: 1, maxLength: 3 }), fc.constantFrom(...SCOPES), names, names, (resources, action, org, name) => {
      const allowed = SCOPES.map((scope) => authorize(key(scope, resources), action, repo(org, name)).allowed);
      for (let i = 1; i < allowed.length; i++) assert.ok(!allowed[i - 1] || allowed[i]);
    }), { numRuns: 1000 });
  });
});

describe('authorizeRefUpdate', () => {
  const agent = key('write', [{ org: 'acme', repo: 'app', branches: ['agent-7/*'] }]);

  it('lets a branch-limited key create, update and delete matching branches only', () => {
    for (const kind of ['create', 'update', 'delete'] as const) {
      assert.equal(authorizeRefUpdate(agent, 'acme', 'app', [], { ref: 'refs/heads/agent-7/fix', kind }), null);
      assert.match(authorizeRefUpdate(agent, 'acme', 'app', [], { ref: 'refs/heads/main', kind }) ?? '', /only push to branches matching agent-7\/\*/);
    }
  });

  it('refuses tags and other refs to a branch-limited key', () => {
    assert.notEqual(authorizeRefUpdate(agent, 'acme', 'app', [], { ref: 'refs/tags/v1', kind: 'create' }), null);
    assert.notEqual(authorizeRefUpdate(agent, 'acme', 'app', [], { ref: 'refs/notes/x', kind: 'create' }), null);
  });

  it('does not let * cross a slash, while ** does', () => {
    assert.notEqual(authorizeRefUpdate(agent, 'acme', 'app', [], { ref: 'refs/heads/agent-7/a/b', kind: 'create' }), null);
    const deep = key('write', [{ org: 'acme', branches: ['feature/**'] }]);
    assert.equal(authorizeRefUpdate(deep, 'acme', 'app', [], { ref: 'refs/heads/feature/a/b', kind: 'create' }), null);
  });

  it('uses the union of grants: an unrestricted grant on the repo lifts branch limits', () => {
    const both = key('write', [{ org: 'acme', branches: ['agent-7/*'] }, { org: 'acme', repo: 'app' }]);
    assert.equal(authorizeRefUpdate(both, 'acme', 'app', [], { ref: 'refs/heads/main', kind: 'update' }), null);
    assert.notEqual(authorizeRefUpdate(both, 'acme', 'web', [], { ref: 'refs/heads/main', kind: 'update' }), null);
  });

  const rules: RefRule[] = [{ pattern: 'main', protected: true }, { pattern: 'feature/*', noForcePush: true, noDelete: true }];

  it('lets only admins move protected branches', () => {
    assert.match(authorizeRefUpdate(key('write', [{ org: 'acme' }]), 'acme', 'app', rules, { ref: 'refs/heads/main', kind: 'update' }) ?? '', /protected/);
    assert.equal(authorizeRefUpdate(key('admin', [{ org: 'acme' }]), 'acme', 'app', rules, { ref: 'refs/heads/main', kind: 'update' }), null);
    assert.equal(authorizeRefUpdate({ kind: 'root' }, 'acme', 'app', rules, { ref: 'refs/heads/main', kind: 'delete' }), null);
  });

  it('refuses force pushes and deletes where the policy says so, for everyone', () => {
    for (const who of [{ kind: 'root' } as const, key('admin', [{ org: 'acme' }])]) {
      assert.match(authorizeRefUpdate(who, 'acme', 'app', rules, { ref: 'refs/heads/feature/x', kind: 'update', forced: true }) ?? '', /force/);
      assert.match(authorizeRefUpdate(who, 'acme', 'app', rules, { ref: 'refs/heads/feature/x', kind: 'delete' }) ?? '', /deleted/);
      assert.equal(authorizeRefUpdate(who, 'acme', 'app', rules, { ref: 'refs/heads/feature/x', kind: 'update', forced: false }), null);
    }
  });

  it('asks for ancestry only for updates under a noForcePush rule', () => {
    assert.equal(needsAncestry(rules, { ref: 'refs/heads/feature/x', kind: 'update' }), true);
    assert.equal(needsAncestry(rules, { ref: 'refs/heads/feature/x', kind: 'create' }), false);
    assert.equal(needsAncestry(rules, { ref: 'refs/heads/main', kind: 'update' }), false);
    assert.equal(needsAncestry(rules, { ref: 'refs/tags/feature/x', kind: 'update' }), false);
  });
});
