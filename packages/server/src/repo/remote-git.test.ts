import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parsePorcelain } from './remote-git.ts';

const OID = '0123456789012345678901234567890123456789';
const STDOUT = [
  'To http://127.0.0.1:4000/r.git',
  ` \t${OID}:refs/heads/main\t1111111..2222222`,
  `*\t${OID}:refs/heads/new\t[new branch]`,
  `!\t${OID}:refs/heads/stale\t[rejected] (stale info)`,
  `!\t${OID}:refs/heads/prot\t[remote rejected] (hook declined)`,
  '-\t:refs/heads/gone\t[deleted]',
  `=\t${OID}:refs/heads/same\t[up to date]`,
  'Done',
  '',
].join('\n');
const ALL = ['refs/heads/main', 'refs/heads/new', 'refs/heads/stale', 'refs/heads/prot', 'refs/heads/gone', 'refs/heads/same'];

describe('parsePorcelain', () => {
  it('reads one result per ref of a realistic git push --porcelain output, in order', () => {
    assert.deepEqual(parsePorcelain(STDOUT, ALL), [
      { ref: 'refs/heads/main', ok: true, reason: null, stale: false },
      { ref: 'refs/heads/new', ok: true, reason: null, stale: false },
      { ref: 'refs/heads/stale', ok: false, reason: 'stale info', stale: true },
      { ref: 'refs/heads/prot', ok: false, reason: 'hook declined', stale: false },
      { ref: 'refs/heads/gone', ok: true, reason: null, stale: false },
      { ref: 'refs/heads/same', ok: true, reason: null, stale: false },
    ]);
  });

  it('takes a fast-forward, whose flag is a space, as accepted', () => {
    assert.deepEqual(parsePorcelain(STDOUT, ['refs/heads/main']), [{ ref: 'refs/heads/main', ok: true, reason: null, stale: false }]);
  });

  it('takes a forced update as accepted', () => {
    const stdout = `To https://h/x.git\n+\t${OID}:refs/heads/main\t1111111...2222222 (forced update)\nDone\n`;
    assert.deepEqual(parsePorcelain(stdout, ['refs/heads/main']), [{ ref: 'refs/heads/main', ok: true, reason: null, stale: false }]);
  });

  it('reads the ref of a deletion from its empty source', () => {
    assert.deepEqual(parsePorcelain(STDOUT, ['refs/heads/gone']), [{ ref: 'refs/heads/gone', ok: true, reason: null, stale: false }]);
  });

  it('marks a failed lease as stale, whether git says stale info or fetch first', () => {
    const stdout = `To https://h/x.git\n!\t${OID}:refs/heads/a\t[rejected] (stale info)\n!\t${OID}:refs/heads/b\t[rejected] (fetch first)\nDone\n`;
    assert.deepEqual(parsePorcelain(stdout, ['refs/heads/a', 'refs/heads/b']), [
      { ref: 'refs/heads/a', ok: false, reason: 'stale info', stale: true },
      { ref: 'refs/heads/b', ok: false, reason: 'fetch first', stale: true },
    ]);
  });

  it('does not take other refusals for a stale lease', () => {
    const stdout = [
      'To https://h/x.git',
      `!\t${OID}:refs/heads/a\t[rejected] (non-fast-forward)`,
      `!\t${OID}:refs/heads/b\t[remote rejected] (protected branch hook declined)`,
      `!\t${OID}:refs/heads/c\t[remote failure] (remote failed to report status)`,
      'Done',
    ].join('\n');
    assert.deepEqual(parsePorcelain(stdout, ['refs/heads/a', 'refs/heads/b', 'refs/heads/c']), [
      { ref: 'refs/heads/a', ok: false, reason: 'non-fast-forward', stale: false },
      { ref: 'refs/heads/b', ok: false, reason: 'protected branch hook declined', stale: false },
      { ref: 'refs/heads/c', ok: false, reason: 'remote failed to report status', stale: false },
    ]);
  });

  it('keeps parentheses inside a reason', () => {
    const stdout = `!\t${OID}:refs/heads/a\t[remote rejected] (pre-receive hook declined (see policy))\n`;
    assert.deepEqual(parsePorcelain(stdout, ['refs/heads/a']), [{ ref: 'refs/heads/a', ok: false, reason: 'pre-receive hook declined (see policy)', stale: false }]);
  });

  it('falls back to the summary after its bracket when a refusal gives no reason in parentheses', () => {
    const stdout = `!\t${OID}:refs/heads/a\t[remote rejected] shallow update not allowed\n`;
    assert.deepEqual(parsePorcelain(stdout, ['refs/heads/a']), [{ ref: 'refs/heads/a', ok: false, reason: 'shallow update not allowed', stale: false }]);
  });

  it('ignores refs that were not asked for', () => {
    assert.deepEqual(parsePorcelain(STDOUT, ['refs/heads/stale']), [{ ref: 'refs/heads/stale', ok: false, reason: 'stale info', stale: true }]);
    assert.deepEqual(parsePorcelain(STDOUT, []), []);
    assert.deepEqual(parsePorcelain(STDOUT, ['refs/heads/other', 'refs/tags/main']), []);
  });

  it('leaves out refs git printed nothing for', () => {
    assert.deepEqual(parsePorcelain(STDOUT, ['refs/heads/main', 'refs/heads/missing']).map((r) => r.ref), ['refs/heads/main']);
  });

  it('ignores the To and Done lines, remote chatter and lines without tabs', () => {
    const stdout = 'To https://h/x.git\nremote: Resolving deltas: 100% (1/1)\n  refs/heads/main 1111111..2222222\nDone\n';
    assert.deepEqual(parsePorcelain(stdout, ['refs/heads/main']), []);
    assert.deepEqual(parsePorcelain('', ['refs/heads/main']), []);
  });

  it('reads tags as well as branches', () => {
    const stdout = `To https://h/x.git\n*\t${OID}:refs/tags/v1.0\t[new tag]\n!\t${OID}:refs/tags/v0.9\t[rejected] (already exists)\nDone\n`;
    assert.deepEqual(parsePorcelain(stdout, ['refs/tags/v1.0', 'refs/tags/v0.9']), [
      { ref: 'refs/tags/v1.0', ok: true, reason: null, stale: false },
      { ref: 'refs/tags/v0.9', ok: false, reason: 'already exists', stale: false },
    ]);
  });

  it('returns nothing when git failed before printing any ref', () => {
    assert.deepEqual(parsePorcelain('', ALL), []);
    assert.deepEqual(parsePorcelain('fatal: unable to access\n', ALL), []);
  });

  it('reports exactly the asked refs it printed, accepted unless flagged ! (property)', () => {
    const flag = fc.constantFrom(' ', '+', '-', '*', '=', '!');
    const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/).map((s) => `refs/heads/${s}`);
    const line = fc.record({ flag, ref: name, reason: fc.stringMatching(/^[a-z][a-z ]{0,15}[a-z]$/) });
    fc.assert(fc.property(fc.uniqueArray(line, { selector: (l) => l.ref, maxLength: 8 }), fc.array(name, { maxLength: 8 }), (lines, asked) => {
      const stdout = ['To https://h/x.git', ...lines.map(({ flag: f, ref, reason }) => `${f}\t${f === '-' ? '' : OID}:${ref}\t${f === '!' ? `[rejected] (${reason})` : '[new branch]'}`), 'Done', ''].join('\n');
      const results = parsePorcelain(stdout, asked);
      const expected = lines.filter((l) => asked.includes(l.ref));
      assert.deepEqual(results.map((r) => r.ref), expected.map((l) => l.ref));
      for (const [i, r] of results.entries()) {
        const l = expected[i]!;
        assert.equal(r.ok, l.flag !== '!');
        assert.equal(r.reason, l.flag === '!' ? l.reason : null);
      }
    }), { numRuns: 300 });
  });
  it('counts the remote losing its own compare-and-swap at update time as stale, not as a refusal', () => {
    const [result] = parsePorcelain(`To http://h/r.git\n!\t${OID}:refs/heads/raced\t[remote rejected] (failed to update ref)\nDone\n`, ['refs/heads/raced']);
    assert.deepEqual(result, { ref: 'refs/heads/raced', ok: false, reason: 'failed to update ref', stale: true });
  });
});
