import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkRefFormat, checkWritableRefName } from './ref-name.ts';

describe('ref names', () => {
  for (const bad of ['refs/heads/a..b', 'refs/heads/foo bar', 'refs/heads/a\tb', 'refs/heads/a@{b', 'refs/heads//x', 'refs/heads/x/', 'refs/heads/x.', 'refs/heads/.x', 'refs/heads/a/.b', 'refs/heads/foo.lock', 'refs/heads/x.lock/y', 'refs/tags/v1^{}', 'refs/heads/a\\b', 'refs/heads/a*b', 'refs/heads/a:b', 'refs/heads/a?b', 'refs/heads/a[b', 'refs/heads/a~b', 'refs/heads/a\x7fb', '@']) {
    it(`refuses ${JSON.stringify(bad)} as git check-ref-format does`, () => {
      assert.notEqual(checkRefFormat(bad), null);
    });
  }

  for (const good of ['refs/heads/@', 'refs/heads/@x', 'refs/heads/ünï', 'refs/heads/agent-7/task-1', 'refs/tags/v1.0']) {
    it(`accepts ${JSON.stringify(good)}`, () => {
      assert.equal(checkWritableRefName(good), null);
    });
  }

  it('refuses pushes outside refs/ or with a single level, refs/heads/HEAD and leading dashes', () => {
    for (const name of ['main', 'HEAD', 'refs/foo', 'refs/heads/HEAD', 'refs/heads/-x', 'refs/tags/-v']) {
      assert.match(checkWritableRefName(name) ?? '', /funny refname/, name);
    }
  });

  it('refuses names over 1024 bytes', () => {
    assert.match(checkWritableRefName(`refs/heads/${'a'.repeat(1100)}`) ?? '', /longer than/);
  });
});
