/**
 * A file of more than 4 GiB (issue 13: "push 2–4 GiB over HTTP"), pushed and cloned with the
 * git CLI: pack entry sizes past 32 bits, the chunk store's Adler-32 combined over 4 GiB,
 * eviction, and a splice of 32,768 chunk frames. The file is zeros (a sparse file), so the
 * pack is a few MiB and the chunk store holds one chunk: the test costs CPU (git inflates and
 * hashes 4 GiB on each side), not disk. Git for Windows, which truncates objects of 4 GiB or
 * more, is warned over side-band when a clone sends it one (bigstore/windows-clients.ts).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { auth, commitFile, git, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';
import { noise } from './helpers/big-files.ts';
import { onClusterOfOne, onPostgres } from './helpers/database.ts';
import { BIG_BLOB_BYTES } from '../src/repo/big-blob.ts';
import { findRepo } from '../src/db/repos.ts';

const HUGE_BYTES = 4 * 1024 ** 3 + 4096;
const WINDOWS_AGENT = 'git/2.47.1.windows.1';

// Two minutes of git and hashing that the metadata database plays no part in: once, in the SQLite pass.
const skip = onClusterOfOne || onPostgres ? 'runs once, in the SQLite pass (2 minutes and 4 GiB of disk; the cluster pass runs the same eviction and splicing on 50 MiB files)' : false;

describe('a file of more than 4 GiB', { skip, timeout: 15 * 60_000 }, () => {
  let grove: TestServer;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let url: string;
  let huge: string;
  let big: string;

  before(async () => {
    grove = await startTestServer();
    work = await tempDir();
    const repo = path.join(work.path, 'work');
    await initWorkRepo(repo);
    await commitFile(repo, 'model.bin', noise(BIG_BLOB_BYTES, 91), 'a 50 MiB file');
    const file = await open(path.join(repo, 'huge.bin'), 'w');
    await file.truncate(HUGE_BYTES);
    await file.close();
    await gitOk(['-c', 'core.compression=1', 'add', 'huge.bin'], { cwd: repo });
    await gitOk(['commit', '-q', '-m', 'a file of more than 4 GiB'], { cwd: repo });
    huge = (await gitOk(['rev-parse', 'HEAD:huge.bin'], { cwd: repo })).trim();
    big = (await gitOk(['rev-parse', 'HEAD:model.bin'], { cwd: repo })).trim();
    url = await grove.createRepo('ml', 'huge');
    await gitOk([...auth(grove.token), 'push', '-q', url, 'main'], { cwd: repo });
    await grove.server.evictions!.idle();
  });

  after(async () => {
    await grove?.close();
    await work?.[Symbol.asyncDispose]();
  });

  it('is stored once in the chunk store and leaves git', async () => {
    assert.equal(grove.server.bigstore.has(huge), true);
    const gitDir = grove.server.repos.gitDir((await findRepo(grove.server.db, 'ml', 'huge'))!.id);
    assert.notEqual((await git(['--git-dir', gitDir, 'cat-file', '-e', huge])).code, 0, 'git no longer holds it');
  });

  it('clones whole into Git for Windows with a warning that names it, and not the 50 MiB file', async () => {
    const clone = path.join(work.path, 'clone.git');
    const cloned = await git([...auth(grove.token), 'clone', '--bare', url, clone], { env: { GIT_USER_AGENT: WINDOWS_AGENT } });
    assert.equal(cloned.code, 0, cloned.stderr);
    assert.match(cloned.stderr, new RegExp(`remote: warning: grove: blob ${huge} is ${HUGE_BYTES} bytes: Git for Windows truncates objects of 4 GiB or more`));
    assert.doesNotMatch(cloned.stderr, new RegExp(big));
    // index-pack hashed every byte: the object arrived under its id, at its size.
    assert.equal((await gitOk(['--git-dir', clone, 'cat-file', '-s', huge])).trim(), String(HUGE_BYTES));
    assert.equal((await gitOk(['--git-dir', clone, 'cat-file', '-s', big])).trim(), String(BIG_BLOB_BYTES));
  });

  it('clones whole into any other git without a warning', async () => {
    const clone = path.join(work.path, 'linux.git');
    const cloned = await git([...auth(grove.token), 'clone', '--bare', url, clone]);
    assert.equal(cloned.code, 0, cloned.stderr);
    assert.doesNotMatch(cloned.stderr, /warning: grove/);
    assert.equal((await gitOk(['--git-dir', clone, 'cat-file', '-s', huge])).trim(), String(HUGE_BYTES));
  });
});
