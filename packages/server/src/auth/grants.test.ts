import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkMint, grantWithin, parseGrants } from './grants.ts';
import { checkBranchGlob, globWithin, matchesBranchGlob } from './glob.ts';
import { parseTtl } from './ttl.ts';
import type { Grant, Principal } from './principal.ts';

const admin = (resources: Grant[], expiresAt: number | null = null): Principal =>
  ({ kind: 'key', id: 'key_admin', name: null, scope: 'admin', resources, expiresAt });

describe('branch globs', () => {
  it('matches * within a segment, ** across segments and ? as one character', () => {
    assert.ok(matchesBranchGlob('agent-7/*', 'agent-7/fix'));
    assert.ok(!matchesBranchGlob('agent-7/*', 'agent-7/a/b'));
    assert.ok(matchesBranchGlob('feature/**', 'feature/a/b'));
    assert.ok(matchesBranchGlob('v?', 'v1'));
    assert.ok(!matchesBranchGlob('v?', 'v/'));
    assert.ok(!matchesBranchGlob('main', 'main2'));
    assert.ok(matchesBranchGlob('a.b', 'a.b') && !matchesBranchGlob('a.b', 'axb'));
  });

  it('refuses patterns that are not valid branch names', () => {
    for (const bad of ['', 'a..b', 'a b', '***', 'x.lock', '/x', 'x/']) assert.notEqual(checkBranchGlob(bad), null, bad);
    for (const good of ['agent-7/*', 'feature/**', 'main', 'release/v?']) assert.equal(checkBranchGlob(good), null, good);
  });

  it('decides containment conservatively', () => {
    assert.ok(globWithin('agent-7/*', 'agent-7/*'));
    assert.ok(globWithin('agent-7/fix', 'agent-7/*'));
    assert.ok(globWithin('feature/a/*', 'feature/**'));
    assert.ok(!globWithin('agent-7/**', 'agent-7/*'));
    assert.ok(!globWithin('*', 'agent-7/*'));
  });
});

describe('grants', () => {
  it('parses valid resources and names the first problem otherwise', () => {
    assert.deepEqual(parseGrants([{ org: 'acme', repo: 'app', branches: ['a/*'] }]), { grants: [{ org: 'acme', repo: 'app', branches: ['a/*'] }] });
    assert.match((parseGrants([]) as { error: string }).error, /non-empty/);
    assert.match((parseGrants([{ org: 'Acme' }]) as { error: string }).error, /resources\[0\]\.org/);
    assert.match((parseGrants([{ org: 'acme', branches: [] }]) as { error: string }).error, /branches/);
    assert.match((parseGrants([{ org: 'acme', extra: 1 }]) as { error: string }).error, /unknown field/);
  });

  it('contains narrower grants only', () => {
    assert.ok(grantWithin({ org: 'acme', repo: 'app' }, { org: 'acme' }));
    assert.ok(!grantWithin({ org: 'acme' }, { org: 'acme', repo: 'app' }));
    assert.ok(!grantWithin({ org: 'acme', repo: 'app' }, { org: 'acme', branches: ['a/*'] }));
    assert.ok(grantWithin({ org: 'acme', repo: 'app', branches: ['a/x'] }, { org: 'acme', branches: ['a/*'] }));
  });
});

describe('minting without escalation', () => {
  it('lets the root token mint anything', () => {
    assert.equal(checkMint({ kind: 'root' }, { scope: 'admin', resources: [{ org: 'x' }], expiresAt: null }), null);
  });

  it('refuses non-admin keys and signed tokens', () => {
    const writer: Principal = { kind: 'key', id: 'k', name: null, scope: 'write', resources: [{ org: 'acme' }], expiresAt: null };
    assert.match(checkMint(writer, { scope: 'read', resources: [{ org: 'acme' }], expiresAt: null }) ?? '', /only admin keys/);
    const signed: Principal = { kind: 'signed', id: 'j', org: 'acme', signingKeyId: 's', scope: 'admin', resources: [{ org: 'acme' }], expiresAt: 1 };
    assert.match(checkMint(signed, { scope: 'read', resources: [{ org: 'acme' }], expiresAt: 0 }) ?? '', /signed tokens/);
  });

  it('refuses resources outside the minter and expiries beyond its own', () => {
    const minter = admin([{ org: 'acme', repo: 'app' }], 10_000);
    assert.match(checkMint(minter, { scope: 'read', resources: [{ org: 'acme' }], expiresAt: 5_000 }) ?? '', /outside/);
    assert.match(checkMint(minter, { scope: 'read', resources: [{ org: 'acme', repo: 'app' }], expiresAt: null }) ?? '', /expire/);
    assert.match(checkMint(minter, { scope: 'read', resources: [{ org: 'acme', repo: 'app' }], expiresAt: 20_000 }) ?? '', /expire/);
    assert.equal(checkMint(minter, { scope: 'write', resources: [{ org: 'acme', repo: 'app', branches: ['x/*'] }], expiresAt: 9_000 }), null);
  });
});

describe('ttl', () => {
  it('reads seconds, minutes, hours, days and plain numbers', () => {
    assert.equal(parseTtl('90s'), 90);
    assert.equal(parseTtl('30m'), 1800);
    assert.equal(parseTtl('1h'), 3600);
    assert.equal(parseTtl('7d'), 604800);
    assert.equal(parseTtl('45'), 45);
    assert.equal(parseTtl(120), 120);
  });

  it('refuses anything else', () => {
    for (const bad of ['', '5 minutes', '-1', '0', '1w', '1.5h']) assert.equal(parseTtl(bad), null, bad);
    assert.equal(parseTtl(0), null);
    assert.equal(parseTtl(1.5), null);
  });
});
