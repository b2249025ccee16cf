/**
 * A full disk loses nothing. The data directory is a small tmpfs that the test fills to the
 * last byte: pushes, API commits and forks fail with a clear error and move no ref, leave no
 * quarantine, temporary object or row behind; database writes land whole with their event or
 * not at all; the server stays up and serves clones (the pack cache gives its space back,
 * maintenance pauses); once space is freed, everything works again and fsck is clean.
 *
 * Mounting a tmpfs needs root and a machine that allows it (CI's does); elsewhere the test is
 * skipped, saying why.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, rm, rmdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { GroveApiError } from '@grove/sdk';
import { openRawDatabase } from './helpers/database.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { auth, commitFile, git, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';

const run = promisify(execFile);
const TMPFS_BYTES = 48 * 1024 * 1024;
const canMount = probeMount();

/** Whether this process may mount a tmpfs (root, and a kernel or container that allows it). */
function probeMount(): boolean {
  if (process.getuid?.() !== 0 || process.platform !== 'linux') return false;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'grove-mount-probe-'));
  try {
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]).status !== 0) return false;
    spawnSync('umount', [dir]);
    return true;
  } finally {
    rmdirSync(dir);
  }
}

/** Writes a filler file until the filesystem is full; returns its path. */
async function fill(dir: string): Promise<string> {
  const file = path.join(dir, 'filler');
  const handle = await open(file, 'w');
  const chunk = Buffer.alloc(1024 * 1024, 1);
  try {
    for (;;) {
      try {
        await handle.write(chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
        break;
      }
    }
    // the last partial megabyte, down to single pages
    for (let size = 512 * 1024; size >= 4096; size /= 2) {
      try {
        await handle.write(chunk.subarray(0, size));
      } catch {
        // full at this size: try a smaller one
      }
    }
  } finally {
    await handle.close();
  }
  return file;
}

async function expect507(promise: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof GroveApiError, `${what}: ${String(error)}`);
    assert.equal(error.status, 507, `${what}: ${error.message}`);
    assert.equal(error.code, 'insufficient_storage');
    assert.match(error.message, /out of disk space; nothing was changed/);
    return true;
  });
}

async function leftovers(gitDir: string): Promise<string[]> {
  const objects = await readdir(path.join(gitDir, 'objects'), { recursive: true });
  return objects.map(String).filter((name) => /(^|\/)(incoming-|tmp_|pack\/tmp_)/.test(name) || name.endsWith('.lock'));
}

describe('a full disk', { skip: canMount ? false : 'needs to mount a small tmpfs for the data directory (root, and a machine that allows mounts)' }, () => {
  let mountPoint: string;
  let grove: TestServer;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let url: string;
  let gitDir: string;
  let repo: string;
  let main: string;

  before(async () => {
    mountPoint = await mkdtemp(path.join(os.tmpdir(), 'grove-full-disk-'));
    await run('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_BYTES}`, 'tmpfs', mountPoint]);
    const dataDir = path.join(mountPoint, 'data');
    await mkdir(dataDir);
    grove = await startTestServer({ GROVE_DISK_RESERVE_BYTES: String(4 * 1024 * 1024), GROVE_MAINTENANCE_PUSHES: '0' }, dataDir);
    work = await tempDir('grove-full-disk-work-');
    url = await grove.createRepo('acme', 'app');
    gitDir = grove.server.repos.gitDir((await grove.sdk.repos.get('acme', 'app')).id);
    repo = path.join(work.path, 'work');
    await initWorkRepo(repo);
    main = await commitFile(repo, 'README.md', '# app\n', 'initial commit');
    await gitOk([...auth(grove.token), 'push', '-q', url, 'HEAD:main'], { cwd: repo });
    await gitOk([...auth(grove.token), 'clone', '-q', url, path.join(work.path, 'warm')]); // one pack cache entry
  });

  after(async () => {
    await grove?.close();
    await work?.[Symbol.asyncDispose]();
    if (mountPoint) {
      await run('umount', [mountPoint]).catch(() => undefined);
      await rmdir(mountPoint).catch(() => undefined);
    }
  });

  it('refuses writes cleanly when full, keeps serving reads, and works again once space is freed, with fsck clean', async () => {
    assert.equal(grove.server.repos.packCache!.entries, 1);
    const filler = await fill(mountPoint);
    await delay(600); // DiskSpace measures at most every 500 ms: the next look sees the full disk

    // a push: refused with a message, no ref moved, nothing half-written left
    await commitFile(repo, 'big.bin', randomBytes(2 * 1024 * 1024).toString('base64'), 'a big file');
    const push = await git([...auth(grove.token), 'push', url, 'HEAD:main'], { cwd: repo });
    assert.notEqual(push.code, 0, 'the push must fail on a full disk');
    assert.match(push.stderr, /out of disk space|No space left on device|unpack failed/);
    assert.equal((await gitOk([...auth(grove.token), 'ls-remote', url, 'refs/heads/main'])).split('\t')[0], main);
    assert.deepEqual(await leftovers(gitDir), []);

    // an API commit and a fork: 507, nothing changed
    await expect507(grove.sdk.commits.create('acme', 'app', { branch: 'main', expectedHead: main, message: 'api', files: [{ path: 'api.bin', content: randomBytes(1024 * 1024).toString('base64') }] }), 'an API commit');
    assert.equal((await grove.sdk.branches.get('acme', 'app', 'main')).sha, main);
    // (the two-character shard directories may stay, empty: they hold no repository)
    const repositoryFiles = async () => (await readdir(path.join(grove.dataDir, 'repos'), { recursive: true })).filter((name) => !/^[0-9a-f]{2}$/.test(name));
    const reposBefore = await repositoryFiles();
    await expect507(grove.sdk.repos.fork('acme', 'app-fork', 'acme/app'), 'a fork');
    assert.deepEqual((await grove.sdk.repos.list('acme')).items.map((r) => r.name), ['app']);
    assert.deepEqual(await repositoryFiles(), reposBefore);

    // a database write lands whole with its event, or answers 507 and leaves nothing
    const created = await grove.sdk.orgs.create({ name: 'during-full' }).then(() => true, (error: unknown) => {
      assert.ok(error instanceof GroveApiError && error.status === 507, String(error));
      return false;
    });
    const db = await openRawDatabase(grove.dataDir);
    try {
      const [rows] = await db.all<{ n: number }>("SELECT count(*) AS n FROM orgs WHERE name = 'during-full'");
      const [events] = await db.all<{ n: number }>("SELECT count(*) AS n FROM events WHERE type = 'org.created' AND org = 'during-full'");
      assert.deepEqual([rows!.n, events!.n], created ? [1, 1] : [0, 0]);
    } finally {
      await db.close();
    }

    // reads go on: a clone (the pack cache gave its space back and writes no entry), the API, health
    const clone = await git([...auth(grove.token), 'clone', url, path.join(work.path, 'while-full')]);
    assert.equal(clone.code, 0, clone.stderr);
    assert.equal(grove.server.repos.packCache!.entries, 0, 'the pack cache was emptied to give space back');
    assert.equal((await grove.sdk.repos.get('acme', 'app')).name, 'app');
    assert.equal((await fetch(`${grove.url}/healthz`)).status, 200);
    // maintenance pauses instead of filling what is left
    assert.equal(await grove.server.repos.maintenance.run(gitDir), false);
    assert.ok(grove.server.repos.maintenance.stats.skippedLowDisk >= 1);

    // space freed: everything works again
    await rm(filler);
    await new Promise((resolve) => setTimeout(resolve, 600)); // the free-space reading is at most 500 ms old
    const again = await git([...auth(grove.token), 'push', url, 'HEAD:main'], { cwd: repo });
    assert.equal(again.code, 0, again.stderr);
    const head = (await gitOk(['rev-parse', 'HEAD'], { cwd: repo })).trim();
    const commit = await grove.sdk.commits.create('acme', 'app', { branch: 'main', expectedHead: head, message: 'api after', files: [{ path: 'after.txt', content: 'after\n' }] });
    await grove.sdk.repos.fork('acme', 'app-fork', 'acme/app');
    assert.equal((await grove.sdk.branches.get('acme', 'app', 'main')).sha, commit.sha);
    const fsck = await git(['--git-dir', gitDir, 'fsck', '--strict', '--no-dangling']);
    assert.equal(fsck.code, 0, fsck.stderr);
    assert.deepEqual(await leftovers(gitDir), []);
    assert.equal(await grove.server.repos.maintenance.run(gitDir), true);
  });
});
