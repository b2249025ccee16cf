/**
 * Stored once (docs/large-files.md): a big blob leaves git once the chunk store holds it,
 * and every git client and API read still gets it — spliced into packs, fetched lazily by
 * partial clones, the base of a thin push — while no other repository can name it into its own.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { access, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import isogit from 'isomorphic-git';
import isohttp from 'isomorphic-git/http/node';
import { Grove } from '@grove/sdk';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { daemonEnv, startDaemon, stopDaemon } from './helpers/daemon.ts';
import { auth, commitFile, git, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';
import { assertCatalogueError, pushAll, rawGet, read, revParse } from './helpers/read-api.ts';
import { noise, withEdits } from './helpers/big-files.ts';
import { BIG_BLOB_BYTES } from '../src/repo/big-blob.ts';
import { findRepo } from '../src/db/repos.ts';
import { pktLine, FLUSH_PKT, DELIM_PKT } from '../src/git/pkt-line.ts';
import { EVICTED_MARKER } from '../src/repo/evict-blobs.ts';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
/** A clone checked and no longer needed: each holds the big file twice (pack and checkout), and the suite runs beside others. */
const discard = (dir: string) => rm(dir, { recursive: true, force: true });

/** Debian's Python, where python3-pygit2 and python3-dulwich install (not a pyenv shim). */
const SYSTEM_PYTHON = '/usr/bin/python3';
const hasPythonModule = (name: string) => {
  try {
    execFileSync(SYSTEM_PYTHON, ['-c', `import ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
/** Debian's JGit jars (jgit-cli, libjgit-java); its `jgit` script misses the LFS jar, so java runs the CLI with all of them. */
const JGIT_CLASSPATH = fs.existsSync('/usr/share/java/org.eclipse.jgit.pgm.jar') ? '/usr/share/java/*' : null;

// In the third pass every server is a cluster of one: the blobs leave the object store's packs too (cluster-big-blobs.test.ts has several nodes).

describe('big blobs evicted from git and served from the chunk store', () => {
  let grove: TestServer;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let url: string;
  let gitDir: string;
  const version1 = noise(BIG_BLOB_BYTES + 1024 * 1024 + 7, 51);
  let oid1: string;
  let bigCommit: string;
  let beforeBig: string;

  /** Whether the repository's git can read the object (its own objects or what it borrows). */
  const gitHas = async (dir: string, oid: string) => (await git(['cat-file', '-e', oid], { cwd: dir })).code === 0;
  const settle = () => grove.server.evictions!.idle();

  before(async () => {
    grove = await startTestServer();
    work = await tempDir();
    await initWorkRepo(work.path);
    beforeBig = await commitFile(work.path, 'README.md', 'models\n', 'readme');
    bigCommit = await commitFile(work.path, 'weights/model.bin', version1, 'model v1');
    await commitFile(work.path, 'README.md', 'models, version 1\n', 'readme again');
    oid1 = await revParse(work.path, 'HEAD:weights/model.bin');
    url = await grove.createRepo('ml', 'models');
    await pushAll(grove, url, work.path);
    await settle();
    gitDir = grove.server.repos.gitDir((await findRepo(grove.server.db, 'ml', 'models'))!.id);
  });

  after(async () => {
    await grove.close();
    await work[Symbol.asyncDispose]();
  });

  it('removes a pushed big blob from the repository once the store holds it, and marks the repository', async () => {
    assert.equal(grove.server.bigstore.has(oid1), true);
    assert.equal(await gitHas(gitDir, oid1), false, 'git no longer has the blob');
    await access(path.join(gitDir, EVICTED_MARKER));
    const packs = (await readdir(path.join(gitDir, 'objects', 'pack'))).filter((n) => n.endsWith('.pack'));
    let packBytes = 0;
    for (const pack of packs) packBytes += fs.statSync(path.join(gitDir, 'objects', 'pack', pack)).size;
    assert.ok(packBytes < 1024 * 1024, `${packBytes} bytes of packs are left`);
    assert.ok(grove.server.repos.maintenance.stats.evictedBlobs >= 1);
  });

  it('clones it fully and with --depth 1: the big file arrives byte for byte and fsck --strict is clean', async () => {
    for (const depth of [[], ['--depth', '1']]) {
      const clone = path.join(work.path, `clone${depth.length}`);
      await gitOk([...auth(grove.token), 'clone', '-q', ...depth, url, clone]);
      assert.equal(sha256(await readFile(path.join(clone, 'weights/model.bin'))), sha256(version1));
      await gitOk(['fsck', '--strict', '--no-dangling'], { cwd: clone });
    }
  });

  it('accepts a push that changes only a small file, and an incremental fetch brings it', async () => {
    const clone = path.join(work.path, 'clone0');
    await commitFile(clone, 'README.md', 'models, still version 1\n', 'readme once more');
    await gitOk([...auth(grove.token), 'push', '-q', 'origin', 'main'], { cwd: clone });
    await gitOk([...auth(grove.token), 'fetch', '-q', 'origin'], { cwd: path.join(work.path, 'clone2') });
    assert.equal(await revParse(path.join(work.path, 'clone2'), 'origin/main'), await revParse(clone, 'HEAD'));
  });

  it('gives isomorphic-git a pack it indexes and checks out', async () => {
    const dir = path.join(work.path, 'iso');
    await isogit.clone({ fs, http: isohttp, dir, url, singleBranch: true, onAuth: () => ({ username: 'x', password: grove.token }) });
    assert.equal(sha256(await readFile(path.join(dir, 'weights/model.bin'))), sha256(version1));
    await discard(dir);
  });

  it('gives JGit, libgit2 (pygit2) and dulwich packs they index, the big file byte for byte', async (t) => {
    const withToken = url.replace('://', `://x:${grove.token}@`);
    // JGit's command line takes credentials from ~/.netrc, not from the URL.
    const jgitHome = path.join(work.path, 'jgit-home');
    fs.mkdirSync(jgitHome, { recursive: true });
    await writeFile(path.join(jgitHome, '.netrc'), `machine ${new URL(url).hostname} login x password ${grove.token}\n`, { mode: 0o600 });
    const clients: Array<{ name: string; run: (dir: string) => string[] | null }> = [
      { name: 'JGit', run: (dir) => (JGIT_CLASSPATH === null ? null : ['java', '-Djava.awt.headless=true', `-Duser.home=${jgitHome}`, '-cp', JGIT_CLASSPATH, 'org.eclipse.jgit.pgm.Main', 'clone', url, dir]) },
      { name: 'pygit2', run: (dir) => (hasPythonModule('pygit2') ? [SYSTEM_PYTHON, '-c', 'import pygit2, sys; pygit2.clone_repository(sys.argv[1], sys.argv[2])', withToken, dir] : null) },
      { name: 'dulwich', run: (dir) => (hasPythonModule('dulwich') ? [SYSTEM_PYTHON, '-c', 'from dulwich import porcelain; import sys; porcelain.clone(sys.argv[1], sys.argv[2])', withToken, dir] : null) },
    ];
    for (const client of clients) {
      const dir = path.join(work.path, `client-${client.name}`);
      const command = client.run(dir);
      if (command === null) {
        t.diagnostic(`${client.name} is not installed here (.ci/run installs it): not checked`);
        continue;
      }
      // Asynchronously: the server answering it runs in this process.
      await new Promise<void>((resolve, reject) => execFile(command[0]!, command.slice(1), { timeout: 300_000, maxBuffer: 16 * 1024 * 1024 }, (error, _stdout, stderr) => (error ? reject(new Error(`${client.name}: ${error.message}\n${stderr}`)) : resolve())));
      assert.equal(sha256(await readFile(path.join(dir, 'weights/model.bin'))), sha256(version1), client.name);
      await gitOk(['fsck', '--strict', '--no-dangling'], { cwd: dir });
      await discard(dir);
    }
  });

  it('lets a partial clone (--filter=blob:limit=1m) fetch the big file lazily when it checks it out', async () => {
    const clone = path.join(work.path, 'partial');
    await gitOk([...auth(grove.token), 'clone', '-q', '--no-checkout', '--filter=blob:limit=1m', url, clone]);
    assert.equal(await gitHas(clone, oid1), false, 'the clone skipped the big blob');
    await gitOk([...auth(grove.token), 'checkout', '-q', 'main'], { cwd: clone });
    assert.equal(sha256(await readFile(path.join(clone, 'weights/model.bin'))), sha256(version1));
    await discard(clone);
  });

  it('accepts a stock client\'s thin delta against the evicted version, and evicts both versions again', async () => {
    const clone = path.join(work.path, 'clone0');
    const version2 = withEdits(version1, 8);
    await writeFile(path.join(clone, 'weights/model.bin'), version2);
    await gitOk(['commit', '-q', '-am', 'model v2'], { cwd: clone });
    const pushed = await git([...auth(grove.token), 'push', '--progress', 'origin', 'main'], { cwd: clone });
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.match(pushed.stderr, /resolving deltas against 1 big file/, 'the client sent a delta against the evicted blob');
    await settle();
    const oid2 = await revParse(clone, 'HEAD:weights/model.bin');
    assert.equal(await gitHas(gitDir, oid1), false);
    assert.equal(await gitHas(gitDir, oid2), false);
    const fresh = path.join(work.path, 'fresh');
    await gitOk([...auth(grove.token), 'clone', '-q', url, fresh]);
    assert.equal(sha256(await readFile(path.join(fresh, 'weights/model.bin'))), sha256(version2));
    await gitOk(['fsck', '--strict', '--no-dangling'], { cwd: fresh });
    await discard(fresh);
  });

  it('serves the evicted blob through the API: by path with a range, by id, and in commit and compare listings as binary with sizes', async () => {
    const range = await read(grove, 'ml/models', `contents/weights/model.bin?ref=${bigCommit}`, { headers: { range: 'bytes=1000-1099' } });
    assert.equal(range.status, 206);
    assert.ok(range.body.equals(version1.subarray(1000, 1100)));
    const whole = await read(grove, 'ml/models', `blobs/${oid1}`);
    assert.equal(sha256(whole.body), sha256(version1));
    const commit = await grove.sdk.contents.commit('ml', 'models', bigCommit);
    const file = commit.files.find((f) => f.path === 'weights/model.bin');
    assert.ok(file, JSON.stringify(commit));
    assert.equal(file.binary, true);
    assert.equal(file.newSize, version1.length);
    const comparison = await grove.sdk.diffs.compare('ml', 'models', beforeBig, 'main');
    const changed = comparison.files.find((f) => f.path === 'weights/model.bin');
    assert.ok(changed, JSON.stringify(comparison));
    assert.equal(changed.binary, true);
    const blame = await rawGet(grove, '/api/v1/repos/ml/models/blame/weights/model.bin');
    assertCatalogueError(blame, 422, 'unprocessable');
    const patch = await grove.sdk.diffs.patch('ml', 'models', beforeBig, 'main');
    assert.match(patch, /Binary files \/dev\/null and b\/weights\/model.bin differ|GIT binary patch/);
  });

  it('streams a tar.gz archive holding the evicted file, and refuses a zip with a clear error', async () => {
    const zip = await rawGet(grove, `/api/v1/repos/ml/models/archive/${bigCommit}.zip`);
    assertCatalogueError(zip, 422, 'unprocessable');
    assert.match(zip.json.error.message, /ask for .*\.tar\.gz/);
    const response = await read(grove, 'ml/models', `archive/${bigCommit}.tar.gz`);
    assert.equal(response.status, 200);
    const dir = path.join(work.path, 'archive');
    fs.mkdirSync(dir);
    await writeFile(path.join(dir, 'a.tar.gz'), response.body);
    execFileSync('tar', ['-xzf', 'a.tar.gz'], { cwd: dir });
    const root = (await readdir(dir)).find((n) => n !== 'a.tar.gz')!;
    assert.equal(sha256(await readFile(path.join(dir, root, 'weights/model.bin'))), sha256(version1));
    assert.equal(await readFile(path.join(dir, root, 'README.md'), 'utf8'), 'models\n');
    await discard(dir);
  });

  it('commits through the API and merges (merge, squash, rebase) beside the evicted file', async () => {
    for (const [branch, strategy] of [['notes-merge', 'merge'], ['notes-squash', 'squash'], ['notes-rebase', 'rebase']] as const) {
      await grove.sdk.commits.create('ml', 'models', { branch, startFrom: 'main', message: `notes for ${strategy}`, files: [{ path: `${branch}.md`, content: 'notes\n' }] });
      await grove.sdk.commits.create('ml', 'models', { branch: 'main', message: `main moves before ${strategy}`, files: [{ path: 'CHANGES.md', content: `${strategy}\n` }] });
      const merged = await grove.sdk.merges.merge('ml', 'models', { base: 'main', head: branch, strategy });
      assert.equal(merged.fastForward, false);
    }
    const model = await read(grove, 'ml/models', 'contents/weights/model.bin?ref=main', { headers: { range: 'bytes=0-9' } });
    assert.equal(model.status, 206);
    assert.equal(await gitHas(gitDir, oid1), false, 'nothing brought the blob back');
  });

  it('stores a big file uploaded through the API straight in the chunk store: git never holds it, clones get it', async () => {
    const upload = noise(BIG_BLOB_BYTES + 99, 53);
    const oid = createHash('sha1').update(`blob ${upload.length}\0`).update(upload).digest('hex');
    const ingested = grove.server.bigstore.stats.ingested;
    const result = await grove.sdk.commits.uploadFile('ml', 'models', 'weights/uploaded.bin', upload, { branch: 'main', message: 'upload a big file' });
    assert.equal(grove.server.bigstore.stats.ingested, ingested + 1, 'stored before the answer');
    assert.equal(await gitHas(gitDir, oid), false, 'git never held it');
    const clone = path.join(work.path, 'after-upload');
    await gitOk([...auth(grove.token), 'clone', '-q', url, clone]);
    assert.equal(await revParse(clone, 'HEAD'), result.sha);
    assert.equal(sha256(await readFile(path.join(clone, 'weights/uploaded.bin'))), sha256(upload));
    await gitOk(['fsck', '--strict', '--no-dangling'], { cwd: clone });
    await discard(clone);
  });

  it('lets a fork, which borrows the objects, clone the big file and read it through the API', async () => {
    await grove.sdk.repos.fork('ml', 'models-fork', 'ml/models');
    const clone = path.join(work.path, 'fork-clone');
    await gitOk([...auth(grove.token), 'clone', '-q', url.replace(/models\.git$/, 'models-fork.git'), clone]);
    await gitOk(['fsck', '--strict', '--no-dangling'], { cwd: clone });
    await discard(clone);
    const byPath = await read(grove, 'ml/models-fork', `contents/weights/model.bin?ref=${bigCommit}`, { headers: { range: 'bytes=0-99' } });
    assert.ok(byPath.body.equals(version1.subarray(0, 100)));
  });

  it('maintains the repository without a bitmap (git refuses one for packs lacking objects)', async () => {
    assert.equal(await grove.server.repos.maintenance.run(gitDir), true);
    const names = await readdir(path.join(gitDir, 'objects', 'pack'));
    assert.deepEqual(names.filter((n) => n.endsWith('.bitmap')), []);
  });

  it('checks the repository with grove.repos.fsck: the blobs git reports missing are verified in the store; a damaged copy and a reader are refused', async () => {
    const plain = await git(['--git-dir', gitDir, 'fsck', '--strict', '--no-dangling']);
    assert.notEqual(plain.code, 0, 'git alone cannot see the store');
    assert.match(plain.stdout, new RegExp(`missing blob ${oid1}`));
    const report = await grove.sdk.repos.fsck('ml', 'models');
    assert.equal(report.ok, true, JSON.stringify(report.problems));
    assert.ok(report.storedBlobs.count >= 3, `${report.storedBlobs.count} blobs verified in the store (two versions and the upload)`);
    assert.ok(report.storedBlobs.bytes >= 3 * BIG_BLOB_BYTES);

    // One byte of the store changed: the copy holding it no longer hashes to its id.
    const segments = path.join(grove.dataDir, 'bigstore', 'segments');
    const segment = path.join(segments, (await readdir(segments)).sort()[0]!);
    const handle = await fs.promises.open(segment, 'r+');
    const at = 20 * 1024 * 1024;
    const original = Buffer.alloc(1);
    try {
      await handle.read(original, 0, 1, at);
      await handle.write(Buffer.from([original[0]! ^ 0xff]), 0, 1, at);
      const damaged = await grove.sdk.repos.fsck('ml', 'models');
      assert.equal(damaged.ok, false);
      assert.ok(damaged.problems.some((p) => p.kind === 'store' && /chunk store's copy of blob [0-9a-f]{40}/.test(p.message)), JSON.stringify(damaged.problems));
    } finally {
      await handle.write(original, 0, 1, at);
      await handle.close();
    }
    assert.equal((await grove.sdk.repos.fsck('ml', 'models')).ok, true);

    const reader = new Grove({ baseUrl: grove.url, token: (await grove.sdk.apiKeys.create({ scope: 'read', resources: [{ org: 'ml', repo: 'models' }] })).token });
    await assert.rejects(reader.repos.fsck('ml', 'models'), { status: 403 });
    await assert.rejects(grove.sdk.repos.fsck('ml', 'nothing-here'), { status: 404, code: 'not_found' });
  });

  describe('another repository that names the blob', () => {
    let otherUrl: string;

    before(async () => {
      // A repository with big blobs of its own, evicted too: git there lacks objects legitimately.
      otherUrl = await grove.createRepo('ml', 'other');
      const own = path.join(work.path, 'own');
      await initWorkRepo(own);
      await commitFile(own, 'own.bin', noise(BIG_BLOB_BYTES, 52), 'its own big file');
      await pushAll(grove, otherUrl, own);
      await settle();
      await access(path.join(grove.server.repos.gitDir((await findRepo(grove.server.db, 'ml', 'other'))!.id), EVICTED_MARKER));
    });

    it('cannot push a tree that names it without sending it', async () => {
      const forged = path.join(work.path, 'forged');
      await initWorkRepo(forged);
      const tree = (await gitOk(['mktree', '--missing'], { cwd: forged, input: `100644 blob ${oid1}\tstolen.bin\n` })).trim();
      const commit = (await gitOk(['commit-tree', tree, '-m', 'steal'], { cwd: forged })).trim();
      // A pack of the commit and tree alone (a client cannot pack a blob it lacks).
      const pack = await new Promise<Buffer>((resolve, reject) => {
        const child = spawn('git', ['pack-objects', '--stdout', '-q'], { cwd: forged });
        const parts: Buffer[] = [];
        child.stdout.on('data', (c: Buffer) => parts.push(c));
        child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(parts)) : reject(new Error(`pack-objects ${code}`))));
        child.stdin.end(`${commit}\n${tree}\n`);
      });
      const body = Buffer.concat([pktLine(`${'0'.repeat(40)} ${commit} refs/heads/stolen\0report-status\n`), FLUSH_PKT, pack]);
      const response = await fetch(`${otherUrl.replace(/\.git$/, '')}.git/git-receive-pack`, {
        method: 'POST',
        headers: { authorization: `Bearer ${grove.token}`, 'content-type': 'application/x-git-receive-pack-request' },
        body,
      });
      const text = Buffer.from(await response.arrayBuffer()).toString('latin1');
      assert.match(text, /ng refs\/heads\/stolen missing necessary objects/);
      assert.equal(await gitHas(path.join(grove.server.repos.gitDir((await findRepo(grove.server.db, 'ml', 'other'))!.id)), oid1), false);
    });

    it('cannot fetch it by id', async () => {
      const body = Buffer.concat([pktLine('command=fetch\n'), pktLine('object-format=sha1\n'), DELIM_PKT, pktLine(`want ${oid1}\n`), pktLine('done\n'), FLUSH_PKT]);
      const response = await fetch(`${otherUrl.replace(/\.git$/, '')}.git/git-upload-pack`, {
        method: 'POST',
        headers: { authorization: `Bearer ${grove.token}`, 'content-type': 'application/x-git-upload-pack-request', 'git-protocol': 'version=2' },
        body,
      });
      const text = Buffer.from(await response.arrayBuffer()).toString('latin1');
      assert.match(text, /ERR .*not our ref/);
      assert.doesNotMatch(text, /PACK/);
    });
  });
});

describe('eviction in a grove serve process', () => {
  const token = 'grove_test_admin_token_for_eviction_012';

  it('leaves every big blob readable when killed with SIGKILL during ingest or eviction, and evicts it after the restart', async () => {
    await using work = await tempDir();
    const dataDir = path.join(work.path, 'data');
    const env = daemonEnv({ GROVE_ADMIN_TOKEN: token });
    let daemon = await startDaemon({ dataDir, env, waitFor: 'grove is listening' });
    try {
      const sdk = () => new Grove({ baseUrl: daemon.url, token }); // a restart listens on a new port
      await sdk().orgs.create({ name: 'served' });
      const files = [noise(BIG_BLOB_BYTES, 71), noise(BIG_BLOB_BYTES + 1, 72), noise(BIG_BLOB_BYTES + 2, 73)];
      // Killed at three moments after the push is acknowledged: ingest running, storing, evicting.
      for (const [i, delayMs] of [0, 250, 600].entries()) {
        await sdk().repos.create('served', { name: `data${i}` });
        const repo = path.join(work.path, `repo${i}`);
        await initWorkRepo(repo);
        await commitFile(repo, 'big.bin', files[i]!, 'big');
        await gitOk([...auth(token), 'push', '-q', `${daemon.url}/served/data${i}.git`, 'main'], { cwd: repo });
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        daemon.child.kill('SIGKILL');
        await daemon.exited;
        daemon = await startDaemon({ dataDir, env, waitFor: 'grove is listening' });
        for (let j = 0; j <= i; j++) {
          const clone = path.join(work.path, `clone${i}-${j}`);
          await gitOk([...auth(token), 'clone', '-q', `${daemon.url}/served/data${j}.git`, clone]);
          assert.equal(sha256(await readFile(path.join(clone, 'big.bin'))), sha256(files[j]!), `repository ${j} after kill ${i}`);
          await discard(clone);
        }
      }
      // Whatever each kill interrupted, the restarted server finishes: no big blob is left in git.
      const after = sdk();
      for (let i = 0; i < files.length; i++) {
        const oid = createHash('sha1').update(`blob ${files[i]!.length}\0`).update(files[i]!).digest('hex');
        for (let attempt = 0; ; attempt++) {
          const held = await after.blobs.chunks('served', `data${i}`, oid).then(() => true, () => false);
          if (held) break;
          if (attempt > 100) throw new Error(`blob of data${i} never stored:\n${daemon.output()}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      for (let attempt = 0; ; attempt++) {
        const left = await bigBlobsInGit(path.join(dataDir, 'repos'));
        if (left === 0) break;
        if (attempt > 300) throw new Error(`${left} big blob file(s) still in git:\n${daemon.output()}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      await stopDaemon(daemon);
    }
  });
});

/** Files of 50 MiB or more under the repositories' object directories (packs or loose objects holding a big blob). */
async function bigBlobsInGit(reposDir: string): Promise<number> {
  let count = 0;
  for (const name of await readdir(reposDir, { recursive: true })) {
    if (!name.includes(`${path.sep}objects${path.sep}`)) continue;
    const size = await stat(path.join(reposDir, name)).then((s) => (s.isFile() ? s.size : 0), () => 0);
    if (size >= BIG_BLOB_BYTES) count++;
  }
  return count;
}
