import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkRefFormat } from '../git/ref-name.ts';
import { backupRef, DEFAULT_RULES, HIDDEN_PREFIX, KEEP_PREFIX, keepRef, MIRROR_RULES, parseSyncRules, pulls, pushes, ruleFor, trackingPrefix, trackingRef, type SyncRule } from './rules.ts';

const errorOf = (value: unknown): string => {
  const parsed = parseSyncRules(value);
  assert.ok('error' in parsed, `expected an error for ${JSON.stringify(value)}`);
  return parsed.error;
};
const rulesOf = (value: unknown): SyncRule[] => {
  const parsed = parseSyncRules(value);
  assert.ok('rules' in parsed, `expected rules for ${JSON.stringify(value)}: ${'error' in parsed ? parsed.error : ''}`);
  return parsed.rules;
};

describe('parseSyncRules', () => {
  it('accepts a full rule list and keeps its order', () => {
    const input = [
      { refs: 'refs/heads/agent/**', direction: 'both', onDivergence: 'keep', deletions: 'propagate' },
      { refs: 'refs/heads/main', direction: 'push', onDivergence: 'overwrite', deletions: 'ignore' },
      { refs: 'refs/tags/v*', direction: 'pull', onDivergence: 'skip', deletions: 'propagate' },
    ];
    assert.deepEqual(rulesOf(input), input);
  });

  it('fills in onDivergence skip and deletions ignore when they are left out', () => {
    assert.deepEqual(rulesOf([{ refs: 'refs/heads/**', direction: 'pull' }]), [{ refs: 'refs/heads/**', direction: 'pull', onDivergence: 'skip', deletions: 'ignore' }]);
    assert.deepEqual(rulesOf([{ refs: 'refs/tags/*', direction: 'push', onDivergence: undefined, deletions: undefined }]), [{ refs: 'refs/tags/*', direction: 'push', onDivergence: 'skip', deletions: 'ignore' }]);
  });

  it('returns fresh rule objects without extra fields', () => {
    const input = [{ refs: 'refs/heads/**', direction: 'pull' }];
    const [parsed] = rulesOf(input);
    assert.notEqual(parsed, input[0]);
    assert.deepEqual(Object.keys(parsed!).sort(), ['deletions', 'direction', 'onDivergence', 'refs']);
  });

  it('accepts exactly 50 rules', () => {
    assert.equal(rulesOf(Array.from({ length: 50 }, (_, i) => ({ refs: `refs/heads/r${i}`, direction: 'pull' }))).length, 50);
  });

  it('refuses anything but an array', () => {
    for (const value of [undefined, null, 'refs/heads/**', 42, {}, { refs: 'refs/heads/**', direction: 'pull' }]) {
      assert.equal(errorOf(value), 'rules must be an array');
    }
  });

  it('refuses an empty list, pointing at the defaults', () => {
    assert.equal(errorOf([]), 'rules must not be empty (omit them for the defaults)');
  });

  it('refuses more than 50 rules', () => {
    assert.equal(errorOf(Array.from({ length: 51 }, () => ({ refs: 'refs/heads/**', direction: 'pull' }))), 'at most 50 rules');
  });

  it('refuses an item that is not an object, naming its index', () => {
    assert.equal(errorOf([null]), 'rules[0] must be an object');
    assert.equal(errorOf([{ refs: 'refs/heads/**', direction: 'pull' }, 'refs/tags/*']), 'rules[1] must be an object');
    assert.equal(errorOf([[]]), 'rules[0] must be an object');
    assert.equal(errorOf([7]), 'rules[0] must be an object');
  });

  it('refuses an unknown field, naming it', () => {
    assert.equal(errorOf([{ refs: 'refs/heads/**', direction: 'pull', force: true }]), 'rules[0] has unknown field "force"');
    assert.equal(errorOf([{ refs: 'refs/heads/**', direction: 'pull' }, { refs: 'refs/heads/**', direction: 'pull', ondivergence: 'skip' }]), 'rules[1] has unknown field "ondivergence"');
    assert.equal(errorOf(JSON.parse('[{"refs":"refs/heads/**","direction":"pull","__proto__":{"x":1}}]')), 'rules[0] has unknown field "__proto__"');
  });

  it('refuses a missing, empty or non-string refs glob', () => {
    for (const refs of [undefined, '', 7, null, ['refs/heads/*']]) {
      assert.equal(errorOf([{ refs, direction: 'pull' }]), 'rules[0].refs: must be a non-empty string');
    }
  });

  it('refuses a refs glob longer than 255 characters', () => {
    assert.equal(errorOf([{ refs: `refs/heads/${'a'.repeat(245)}`, direction: 'pull' }]), 'rules[0].refs: must be at most 255 characters');
    assert.equal(rulesOf([{ refs: `refs/heads/${'a'.repeat(244)}`, direction: 'pull' }]).length, 1);
  });

  it('refuses refs outside refs/heads/ and refs/tags/', () => {
    for (const refs of ['refs/notes/*', 'refs/grove/**', 'refs/pull/*/head', 'refs/**', 'refs/heads', 'refs/heads*', 'heads/main', 'main', '**']) {
      assert.equal(errorOf([{ refs, direction: 'pull' }]), 'rules[0].refs: must start with refs/heads/ or refs/tags/', refs);
    }
  });

  it('refuses three or more stars in a row', () => {
    assert.equal(errorOf([{ refs: 'refs/heads/***', direction: 'pull' }]), 'rules[0].refs: may not contain ***');
    assert.equal(errorOf([{ refs: 'refs/tags/a****', direction: 'pull' }]), 'rules[0].refs: may not contain ***');
  });

  it('refuses a glob that is no valid ref name once its wildcards are filled in, saying why', () => {
    assert.equal(errorOf([{ refs: 'refs/heads/', direction: 'pull' }]), 'rules[0].refs: "refs/heads/" is not a valid ref pattern: a ref cannot end with /');
    assert.equal(errorOf([{ refs: 'refs/heads/a b', direction: 'pull' }]), 'rules[0].refs: "refs/heads/a b" is not a valid ref pattern: a ref cannot contain " "');
    assert.equal(errorOf([{ refs: 'refs/heads/[ab]', direction: 'pull' }]), 'rules[0].refs: "refs/heads/[ab]" is not a valid ref pattern: a ref cannot contain "["');
    assert.equal(errorOf([{ refs: 'refs/heads/a..b', direction: 'pull' }]), 'rules[0].refs: "refs/heads/a..b" is not a valid ref pattern: a ref cannot contain ..');
    assert.equal(errorOf([{ refs: 'refs/heads//x', direction: 'pull' }]), 'rules[0].refs: "refs/heads//x" is not a valid ref pattern: a ref cannot contain //');
    assert.equal(errorOf([{ refs: 'refs/tags/x.lock', direction: 'pull' }]), 'rules[0].refs: "refs/tags/x.lock" is not a valid ref pattern: a ref component cannot end with .lock');
  });

  it('accepts the wildcards *, ** and ? anywhere a ref name character may stand', () => {
    for (const refs of ['refs/heads/*', 'refs/heads/**', 'refs/heads/agent-?/**', 'refs/tags/v*.*', 'refs/heads/**/wip']) {
      assert.equal(rulesOf([{ refs, direction: 'pull' }])[0]!.refs, refs);
    }
  });

  it('refuses a missing or unknown direction', () => {
    for (const direction of [undefined, 'fetch', 'PULL', null, 1]) {
      assert.equal(errorOf([{ refs: 'refs/heads/**', direction }]), 'rules[0].direction must be one of pull, push, both');
    }
  });

  it('refuses an unknown onDivergence', () => {
    for (const onDivergence of ['merge', 'rebase', null, '', 'Skip']) {
      assert.equal(errorOf([{ refs: 'refs/heads/**', direction: 'pull', onDivergence }]), 'rules[0].onDivergence must be one of skip, overwrite, keep');
    }
  });

  it('refuses an unknown deletions', () => {
    for (const deletions of ['delete', null, true, 'Propagate']) {
      assert.equal(errorOf([{ refs: 'refs/heads/**', direction: 'pull', deletions }]), 'rules[0].deletions must be one of ignore, propagate');
    }
  });

  it('refuses onDivergence keep on tags', () => {
    for (const direction of ['pull', 'both', 'push']) {
      assert.equal(errorOf([{ refs: 'refs/tags/*', direction, onDivergence: 'keep' }]), 'rules[0]: onDivergence "keep" applies to branches only');
    }
  });

  it('refuses onDivergence keep on a push rule', () => {
    assert.equal(errorOf([{ refs: 'refs/heads/**', direction: 'push', onDivergence: 'keep' }]), 'rules[0]: onDivergence "keep" publishes the upstream\'s tip, which a push rule never fetches into a branch');
    assert.equal(rulesOf([{ refs: 'refs/heads/**', direction: 'both', onDivergence: 'keep' }])[0]!.onDivergence, 'keep');
  });

  it('reports the first bad rule only', () => {
    assert.equal(errorOf([{ refs: 'refs/heads/**', direction: 'pull' }, { refs: 'refs/x', direction: 'pull' }, { refs: 'refs/heads/**', direction: 'bad' }]), 'rules[1].refs: must start with refs/heads/ or refs/tags/');
  });

  it('accepts every well-formed rule and never throws on arbitrary input (property)', () => {
    const good = fc.record({
      refs: fc.constantFrom('refs/heads/**', 'refs/heads/*', 'refs/heads/agent-?/x', 'refs/tags/**', 'refs/tags/v*'),
      direction: fc.constantFrom('pull', 'push', 'both'),
      onDivergence: fc.constantFrom('skip', 'overwrite', 'keep'),
      deletions: fc.constantFrom('ignore', 'propagate'),
    }).map((r) => ({ ...r }));
    fc.assert(fc.property(fc.array(good, { minLength: 1, maxLength: 50 }), (input) => {
      const parsed = parseSyncRules(input);
      const bad = input.findIndex((r) => r.onDivergence === 'keep' && (r.refs.startsWith('refs/tags/') || r.direction === 'push'));
      if (bad === -1) assert.deepEqual(parsed, { rules: input });
      else assert.match('error' in parsed ? parsed.error : '', new RegExp(`^rules\\[${bad}\\]: onDivergence "keep"`));
    }), { numRuns: 500 });
    fc.assert(fc.property(fc.anything(), (value) => {
      const parsed = parseSyncRules(value);
      assert.ok('rules' in parsed || typeof parsed.error === 'string');
    }), { numRuns: 500 });
  });
});

describe('ruleFor', () => {
  const rule = (refs: string, direction: SyncRule['direction'] = 'pull'): SyncRule => ({ refs, direction, onDivergence: 'skip', deletions: 'ignore' });

  it('picks the first rule whose glob matches', () => {
    const rules = [rule('refs/heads/main', 'push'), rule('refs/heads/**', 'both'), rule('refs/heads/main', 'pull')];
    assert.equal(ruleFor(rules, 'refs/heads/main'), rules[0]);
    assert.equal(ruleFor(rules, 'refs/heads/dev'), rules[1]);
    assert.equal(ruleFor([rules[1]!, rules[0]!], 'refs/heads/main'), rules[1]);
  });

  it('returns null when no rule matches', () => {
    assert.equal(ruleFor([rule('refs/heads/**')], 'refs/tags/v1'), null);
    assert.equal(ruleFor([], 'refs/heads/main'), null);
    assert.equal(ruleFor([rule('refs/heads/agent/*')], 'refs/heads/agentx'), null);
  });

  it('lets * match within one path segment and ** across segments', () => {
    const one = [rule('refs/heads/agent/*')];
    const any = [rule('refs/heads/agent/**')];
    assert.notEqual(ruleFor(one, 'refs/heads/agent/fix'), null);
    assert.equal(ruleFor(one, 'refs/heads/agent/a/b'), null);
    assert.notEqual(ruleFor(any, 'refs/heads/agent/fix'), null);
    assert.notEqual(ruleFor(any, 'refs/heads/agent/a/b'), null);
    assert.equal(ruleFor(any, 'refs/heads/agent'), null);
    assert.equal(ruleFor([rule('refs/heads/*')], 'refs/heads/feature/x'), null);
    assert.notEqual(ruleFor([rule('refs/heads/*')], 'refs/heads/main'), null);
  });

  it('lets ? match one character that is not a slash', () => {
    const rules = [rule('refs/heads/agent-?')];
    assert.notEqual(ruleFor(rules, 'refs/heads/agent-7'), null);
    assert.equal(ruleFor(rules, 'refs/heads/agent-77'), null);
    assert.equal(ruleFor(rules, 'refs/heads/agent-/'), null);
  });

  it('matches dots literally', () => {
    assert.equal(ruleFor([rule('refs/tags/v1.0')], 'refs/tags/v1x0'), null);
    assert.notEqual(ruleFor([rule('refs/tags/v1.0')], 'refs/tags/v1.0'), null);
  });

  it('never syncs Grove\'s own refs or the kept upstream tips, whatever the rules say', () => {
    const everything = [rule('refs/heads/**'), rule('refs/tags/**'), { ...rule('refs/grove/**') }, rule('refs/heads/upstream/**')];
    for (const ref of ['refs/grove/upstreams/up_1/heads/main', 'refs/grove/backups/up_1/run_1/grove/heads/main', 'refs/heads/upstream/main', 'refs/heads/upstream/agent/x']) {
      assert.equal(ruleFor(everything, ref), null, ref);
    }
  });

  it('still syncs branches whose names merely begin like the keep prefix', () => {
    assert.notEqual(ruleFor(DEFAULT_RULES, 'refs/heads/upstream'), null);
    assert.notEqual(ruleFor(DEFAULT_RULES, 'refs/heads/upstreams/x'), null);
  });
});

describe('pulls and pushes', () => {
  it('follow the direction of the rule, and neither happens without one', () => {
    const of = (direction: SyncRule['direction']): SyncRule => ({ refs: 'refs/heads/**', direction, onDivergence: 'skip', deletions: 'ignore' });
    assert.deepEqual([pulls(of('pull')), pushes(of('pull'))], [true, false]);
    assert.deepEqual([pulls(of('push')), pushes(of('push'))], [false, true]);
    assert.deepEqual([pulls(of('both')), pushes(of('both'))], [true, true]);
    assert.deepEqual([pulls(null), pushes(null)], [false, false]);
  });
});

describe('trackingRef, backupRef and keepRef', () => {
  it('puts an upstream\'s tracking refs under refs/grove/upstreams/<id>/', () => {
    assert.equal(trackingRef('up_1', 'refs/heads/main'), 'refs/grove/upstreams/up_1/heads/main');
    assert.equal(trackingRef('up_1', 'refs/tags/v1.0'), 'refs/grove/upstreams/up_1/tags/v1.0');
    assert.equal(trackingRef('up_1', 'refs/heads/agent/a/b'), 'refs/grove/upstreams/up_1/heads/agent/a/b');
    assert.ok(trackingRef('up_1', 'refs/heads/main').startsWith(trackingPrefix('up_1')));
    assert.equal(trackingPrefix('up_1'), 'refs/grove/upstreams/up_1/');
  });

  it('keeps the tracking refs of two upstreams apart', () => {
    assert.notEqual(trackingRef('up_1', 'refs/heads/main'), trackingRef('up_2', 'refs/heads/main'));
    assert.notEqual(trackingRef('up_1', 'refs/heads/v1'), trackingRef('up_1', 'refs/tags/v1'));
  });

  it('puts backups under refs/grove/backups/<upstream>/<run>/<side>/', () => {
    assert.equal(backupRef('up_1', 'run_9', 'grove', 'refs/heads/main'), 'refs/grove/backups/up_1/run_9/grove/heads/main');
    assert.equal(backupRef('up_1', 'run_9', 'remote', 'refs/tags/v1'), 'refs/grove/backups/up_1/run_9/remote/tags/v1');
    assert.notEqual(backupRef('up_1', 'run_9', 'grove', 'refs/heads/main'), backupRef('up_1', 'run_9', 'remote', 'refs/heads/main'));
  });

  it('publishes a kept upstream tip as refs/heads/upstream/<branch>', () => {
    assert.equal(keepRef('refs/heads/main'), 'refs/heads/upstream/main');
    assert.equal(keepRef('refs/heads/agent/x'), 'refs/heads/upstream/agent/x');
    assert.ok(keepRef('refs/heads/main').startsWith(KEEP_PREFIX));
  });

  it('makes valid ref names that no rule ever syncs (property)', () => {
    const segment = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,10}$/).filter((s) => !s.endsWith('.') && !s.endsWith('.lock') && !s.includes('..'));
    const branch = fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => `refs/heads/${parts.join('/')}`);
    const anyRef = fc.oneof(branch, segment.map((s) => `refs/tags/${s}`));
    const everything = [...MIRROR_RULES];
    fc.assert(fc.property(anyRef, branch, segment, segment, (ref, b, upstream, run) => {
      for (const made of [trackingRef(upstream, ref), backupRef(upstream, run, 'grove', ref), backupRef(upstream, run, 'remote', ref), keepRef(b)]) {
        assert.equal(checkRefFormat(made), null, made);
        assert.equal(ruleFor(everything, made), null, made);
      }
      assert.ok(trackingRef(upstream, ref).startsWith(HIDDEN_PREFIX));
    }), { numRuns: 500 });
  });
});

describe('DEFAULT_RULES and MIRROR_RULES', () => {
  it('pull every branch and tag by default, fast-forward only, ignoring deletions', () => {
    for (const ref of ['refs/heads/main', 'refs/heads/a/b/c', 'refs/tags/v1', 'refs/tags/release/1.0']) {
      const rule = ruleFor(DEFAULT_RULES, ref);
      assert.ok(rule !== null, ref);
      assert.equal(pulls(rule), true);
      assert.equal(pushes(rule), false);
      assert.equal(rule.onDivergence, 'skip');
      assert.equal(rule.deletions, 'ignore');
    }
  });

  it('follow the remote exactly in a mirror: overwrite and propagate deletions, pull only', () => {
    for (const ref of ['refs/heads/main', 'refs/heads/a/b/c', 'refs/tags/v1', 'refs/tags/release/1.0']) {
      const rule = ruleFor(MIRROR_RULES, ref);
      assert.ok(rule !== null, ref);
      assert.equal(pulls(rule), true);
      assert.equal(pushes(rule), false);
      assert.equal(rule.onDivergence, 'overwrite');
      assert.equal(rule.deletions, 'propagate');
    }
  });

  it('sync nothing outside branches and tags', () => {
    for (const rules of [DEFAULT_RULES, MIRROR_RULES]) {
      for (const ref of ['refs/notes/commits', 'refs/pull/1/head', 'refs/grove/upstreams/u/heads/main', 'refs/heads/upstream/main']) assert.equal(ruleFor(rules, ref), null, ref);
    }
  });

  it('would themselves pass parseSyncRules', () => {
    assert.deepEqual(parseSyncRules(DEFAULT_RULES), { rules: DEFAULT_RULES });
    assert.deepEqual(parseSyncRules(MIRROR_RULES), { rules: MIRROR_RULES });
  });
});
