import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { auth, generateHistory, git, gitOk, tempDir } from './helpers/git.ts';

describe('git smart HTTP basics', () => {
  let grove: TestServer;
  before(async () => {
    grove = await startTestServer();
  });
  after(async () => {
    await grove.close();
  });

  it('clones an empty repository with a warning and the default branch', async () => {
    const url = await grove.createRepo('acme', 'empty', 'trunk');
    await using work = await tempDir();
    const result = await git([...auth(grove.token), 'clone', url, path.join(work.path, 'c')]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /You appear to have cloned an empty repository/);
    const head = await gitOk(['symbolic-ref', 'HEAD'], { cwd: path.join(work.path, 'c') });
    assert.equal(head.trim(), 'refs/heads/trunk');
  });

  it('pushes a generated history with merges, tags and a binary file, and clones it back identical', async () => {
    const url = await grove.createRepo('acme', 'history');
    await using work = await tempDir();
    const source = path.join(work.path, 'src');
    await generateHistory(source, 15);
    const push = await git([...auth(grove.token), 'push', '--progress', url, '--all'], { cwd: source });
    assert.equal(push.code, 0, push.stderr);
    assert.match(push.stderr, /remote: grove: updated \d+ refs?/);
    await gitOk([...auth(grove.token), 'push', url, '--tags'], { cwd: source });
    const clone = path.join(work.path, 'clone');
    await gitOk([...auth(grove.token), 'clone', url, clone]);
    assert.equal(
      (await gitOk(['rev-parse', 'HEAD', 'v1.0^{tag}', 'light'], { cwd: clone })).trim(),
      (await gitOk(['rev-parse', 'HEAD', 'v1.0^{tag}', 'light'], { cwd: source })).trim(),
    );
    const mirror = path.join(work.path, 'mirror.git');
    await gitOk([...auth(grove.token), 'clone', '--mirror', url, mirror]);
    await gitOk(['fsck', '--strict'], { cwd: mirror });
  });

  it('answers 401 with WWW-Authenticate when credentials are missing', async () => {
    const url = await grove.createRepo('acme', 'private');
    const response = await fetch(`${url}/info/refs?service=git-upload-pack`);
    assert.equal(response.status, 401);
    assert.equal(response.headers.get('www-authenticate'), 'Basic realm="grove"');
    await using work = await tempDir();
    const result = await git(['clone', url, path.join(work.path, 'c')]);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /Authentication failed|could not read Username/);
  });
});
