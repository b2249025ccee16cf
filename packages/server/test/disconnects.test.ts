import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { deflateSync } from 'node:zlib';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { auth, commitFile, git, gitEnv, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';

/** One pkt-line, framed exactly as given. */
function pkt(payload: string): Buffer {
  const body = Buffer.from(payload, 'latin1');
  return Buffer.concat([Buffer.from((body.length + 4).toString(16).padStart(4, '0'), 'latin1'), body]);
}

const FLUSH = Buffer.from('0000');
const DELIM = Buffer.from('0001');

/** The pkt-lines of a response as text ('0000' for a flush). */
function packets(bytes: Buffer): string[] {
  const out: string[] = [];
  let offset = 0;
  while (offset + 4 <= bytes.length) {
    const length = Number.parseInt(bytes.toString('latin1', offset, offset + 4), 16);
    if (Number.isNaN(length)) break;
    if (length < 4) {
      out.push(bytes.toString('latin1', offset, offset + 4));
      offset += 4;
      continue;
    }
    out.push(bytes.toString('utf8', offset + 4, offset + length).replace(/\n$/, ''));
    offset += length;
  }
  return out;
}

/** Runs git with binary stdout (packs). */
function gitBytes(args: readonly string[], cwd: string, input = ''): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = execFile('git', [...args], { cwd, env: gitEnv(), encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`git ${args.join(' ')}: ${error.message}\n${stderr.toString()}`));
      resolve(stdout);
    });
    child.stdin?.on('error', () => {}); // git may exit before reading stdin (EPIPE)
    child.stdin?.end(input);
  });
}

/** A pack object header: type and inflated size. */
function objectHeader(type: number, size: number): Buffer {
  const bytes: number[] = [];
  let byte = (type << 4) | (size & 0x0f);
  size = Math.floor(size / 16);
  while (size > 0) {
    bytes.push(byte | 0x80);
    byte = size & 0x7f;
    size = Math.floor(size / 128);
  }
  bytes.push(byte);
  return Buffer.from(bytes);
}

function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

/** The OFS_DELTA distance back to the base object. */
function deltaOffset(n: number): Buffer {
  const bytes = [n & 0x7f];
  n = Math.floor(n / 128);
  while (n > 0) {
    n -= 1;
    bytes.unshift(0x80 | (n & 0x7f));
    n = Math.floor(n / 128);
  }
  return Buffer.from(bytes);
}

/**
 * A small pack that is slow to index: `objects` given whole, then a 1 MiB blob and a chain of
 * `depth` deltas, each "copy all of the previous blob, add one byte". index-pack resolves the
 * chain only after the last byte arrived, hashing about `depth` MiB while nothing moves on the wire.
 */
function slowToIndexPack(objects: ReadonlyArray<{ type: number; data: Buffer }>, depth: number): Buffer {
  const parts: Buffer[] = [];
  const header = Buffer.alloc(12);
  header.write('PACK', 0, 'latin1');
  header.writeUInt32BE(2, 4);
  header.writeUInt32BE(objects.length + 1 + depth, 8);
  parts.push(header);
  let offset = header.length;
  const add = (entry: Buffer) => {
    parts.push(entry);
    const at = offset;
    offset += entry.length;
    return at;
  };
  for (const { type, data } of objects) add(Buffer.concat([objectHeader(type, data.length), deflateSync(data)]));
  let size = 1024 * 1024;
  let previous = add(Buffer.concat([objectHeader(3, size), deflateSync(Buffer.alloc(size, 0x61))]));
  for (let i = 0; i < depth; i++) {
    const copy = [0x80, ...[size & 0xff, (size >> 8) & 0xff, (size >> 16) & 0xff].flatMap((value, index) => (value ? [value] : []))];
    copy[0]! |= [size & 0xff, (size >> 8) & 0xff, (size >> 16) & 0xff].reduce((flags, value, index) => (value ? flags | (0x10 << index) : flags), 0);
    const delta = Buffer.from([...varint(size), ...varint(size + 1), ...copy, 1, 0x62]);
    previous = add(Buffer.concat([objectHeader(6, delta.length), deltaOffset(offset - previous), deflateSync(delta)]));
    size += 1;
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([body, createHash('sha1').update(body).digest()]);
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 50 ms until it returns true or `timeoutMs` passes; returns the last answer. */
async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await delay(50);
  }
}

/** Live processes whose command line or environment mentions `dataDir` (git children get HOME under it). */
async function processesUsing(dataDir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const status = await readFile(`/proc/${entry}/stat`, 'utf8');
      if (/^\d+ \(.*\) Z/.test(status)) continue; // exited, waiting to be reaped
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).replaceAll('\0', ' ').trim();
      const environ = await readFile(`/proc/${entry}/environ`, 'utf8').catch(() => '');
      if (cmdline.includes(dataDir) || environ.includes(dataDir)) found.push(`${entry}: ${cmdline.replace(/(-c \S+ )+/g, '')}`);
    } catch {
      // the process went away while we looked
    }
  }
  return found;
}

/** Every file under a directory with its size, relative to it. */
async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    out.push(`${path.relative(dir, full)} ${(await stat(full)).size}`);
  }
  return out.sort();
}

interface Target {
  readonly grove: TestServer;
  readonly url: string;
  readonly gitDir: string;
}

interface Exchange {
  readonly req: http.ClientRequest;
  /** The response as it arrives (for tests that stop reading it). */
  readonly response: Promise<http.IncomingMessage>;
  /** Settles when the exchange is over: the whole response, or the error that ended it. */
  readonly done: Promise<{ status: number | null; bytes: Buffer; error: Error | null; endedAt: number }>;
}

/** A POST to a git endpoint over node:http with a chunked body the test writes itself. */
function openPost(t: Target, service: 'git-upload-pack' | 'git-receive-pack', headers: Record<string, string> = {}): Exchange {
  const req = http.request(`${t.url}/${service}`, {
    method: 'POST',
    agent: false,
    headers: {
      Authorization: `Bearer ${t.grove.token}`,
      'Content-Type': `application/x-${service}-request`,
      'Transfer-Encoding': 'chunked',
      ...headers,
    },
  });
  let resolveResponse!: (res: http.IncomingMessage) => void;
  const response = new Promise<http.IncomingMessage>((resolve) => (resolveResponse = resolve));
  const done = new Promise<{ status: number | null; bytes: Buffer; error: Error | null; endedAt: number }>((resolve) => {
    const chunks: Buffer[] = [];
    let status: number | null = null;
    const finish = (error: Error | null) => resolve({ status, bytes: Buffer.concat(chunks), error, endedAt: Date.now() });
    req.once('response', (res) => {
      status = res.statusCode ?? null;
      resolveResponse(res);
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.once('end', () => finish(null));
      res.once('error', finish);
      res.once('aborted', () => finish(new Error('response aborted')));
    });
    req.on('error', finish); // EPIPE and the like may follow the first error: all end the exchange
    req.once('close', () => finish(new Error('connection closed')));
  });
  req.flushHeaders();
  return { req, response, done };
}

describe('client disconnects, stalls and queueing', { concurrency: 1 }, () => {
  let work: Awaited<ReturnType<typeof tempDir>>;
  let source: string;
  let main: string;
  /** A commit on top of main adding 8 MB of random bytes, which no server has. */
  let big: string;
  /** Its pack (everything not in main), about 8 MB. */
  let bigPack: Buffer;
  /** A small commit on top of main, which no server has, and its pack. */
  let small: string;
  let smallPack: Buffer;
  let counter = 0;
  const servers: TestServer[] = [];

  async function server(env: Record<string, string> = {}): Promise<TestServer> {
    const started = await startTestServer(env);
    servers.push(started);
    return started;
  }

  /** A new repository holding main of the source repository. */
  async function makeTarget(grove: TestServer, name = `repo-${++counter}`): Promise<Target> {
    const url = await grove.createRepo('acme', name);
    await gitOk([...auth(grove.token), 'push', '-q', url, 'main'], { cwd: source });
    const { id } = await grove.sdk.repos.get('acme', name);
    return { grove, url, gitDir: path.join(grove.dataDir, 'repos', id.slice(-2), `${id}.git`) };
  }

  async function lsRemote(t: Target): Promise<string> {
    return gitOk([...auth(t.grove.token), 'ls-remote', t.url]);
  }

  async function quarantines(t: Target): Promise<string[]> {
    return (await readdir(path.join(t.gitDir, 'objects'))).filter((name) => name.startsWith('incoming-grove-'));
  }

  /** Waits until the server runs a git child whose command line matches. */
  async function waitForChild(t: Target, pattern: RegExp): Promise<void> {
    const seen = await waitFor(async () => (await processesUsing(t.grove.dataDir)).some((line) => pattern.test(line)));
    assert.ok(seen, `no git child matching ${pattern} appeared; running: ${JSON.stringify(await processesUsing(t.grove.dataDir))}`);
  }

  /** Polls (up to 10 s) for every git child and quarantine to go, then asserts they did. */
  async function assertCleanedUp(t: Target): Promise<void> {
    await waitFor(async () => (await processesUsing(t.grove.dataDir)).length === 0 && (await quarantines(t)).length === 0, 10_000);
    assert.deepEqual(await processesUsing(t.grove.dataDir), [], 'git children left running');
    assert.deepEqual(await quarantines(t), [], 'quarantine directories left in objects/');
  }

  /** A normal push of a new commit works and moves main. */
  async function assertPushWorks(t: Target): Promise<void> {
    await using pusher = await tempDir('grove-disconnect-push-');
    await gitOk(['clone', '-q', source, pusher.path]);
    const next = await commitFile(pusher.path, 'after.txt', `after ${randomBytes(4).toString('hex')}\n`, 'a normal push afterwards');
    const pushed = await git([...auth(t.grove.token), 'push', t.url, 'HEAD:refs/heads/main'], { cwd: pusher.path });
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.match(await lsRemote(t), new RegExp(`^${next}\\trefs/heads/main$`, 'm'));
  }

  async function assertCloneWorks(t: Target, fsck = false): Promise<void> {
    await using clone = await tempDir('grove-disconnect-clone-');
    const cloned = await git([...auth(t.grove.token), 'clone', '-q', t.url, path.join(clone.path, 'c')]);
    assert.equal(cloned.code, 0, cloned.stderr);
    if (fsck) await gitOk(['fsck', '--full'], { cwd: path.join(clone.path, 'c') });
  }

  function pushHead(ref: string, oldOid: string, newOid: string, caps = 'report-status side-band-64k agent=disconnects/1'): Buffer {
    return Buffer.concat([pkt(`${oldOid} ${newOid} ${ref}\0${caps}\n`), FLUSH]);
  }

  before(async () => {
    work = await tempDir('grove-disconnects-');
    source = path.join(work.path, 'source');
    await initWorkRepo(source);
    main = await commitFile(source, 'README.md', '# disconnects\n', 'first');
    await gitOk(['checkout', '-q', '-b', 'big'], { cwd: source });
    big = await commitFile(source, 'big.bin', randomBytes(8 * 1024 * 1024), 'eight megabytes of noise');
    await gitOk(['checkout', '-q', '-b', 'small', 'main'], { cwd: source });
    small = await commitFile(source, 'small.txt', 'small\n', 'a small change');
    await gitOk(['checkout', '-q', 'main'], { cwd: source });
    bigPack = await gitBytes(['-c', 'pack.compression=0', 'pack-objects', '--stdout', '--revs', '-q'], source, `${big}\n^${main}\n`);
    smallPack = await gitBytes(['pack-objects', '--stdout', '--revs', '-q'], source, `${small}\n^${main}\n`);
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await work?.[Symbol.asyncDispose]();
  });

  // Disconnects and queueing use their own servers and run side by side (tests inside each one at a time);
  // the timing-sensitive idle timeout tests run after them, alone.
  describe('disconnects and queueing', { concurrency: true }, () => {
    describe('disconnects', { concurrency: 1 }, () => {
      let grove: TestServer;
      before(async () => {
        grove = await server();
      });

      it('a client that disconnects mid-push moves no ref, and leaves no quarantine or git child behind', async () => {
        const t = await makeTarget(grove);
        const refsBefore = await lsRemote(t);
        const objectsBefore = await listFiles(path.join(t.gitDir, 'objects'));
        const exchange = openPost(t, 'git-receive-pack');
        exchange.req.write(pushHead('refs/heads/main', main, big));
        exchange.req.write(bigPack.subarray(0, bigPack.length / 2));
        await waitForChild(t, /index-pack/);
        assert.equal((await quarantines(t)).length, 1, 'the push is being received into a quarantine');
        await delay(200);
        exchange.req.destroy();
        await exchange.done;
        await assertCleanedUp(t);
        assert.equal(await lsRemote(t), refsBefore);
        assert.deepEqual(await listFiles(path.join(t.gitDir, 'objects')), objectsBefore);
        await assertPushWorks(t);
      });

      describe('mid-clone', { concurrency: 1 }, () => {
        let t: Target;
        let large: string;
        before(async () => {
          const url = await grove.createRepo('acme', 'large');
          await using writer = await tempDir('grove-disconnect-large-');
          await gitOk(['clone', '-q', source, writer.path]);
          large = await commitFile(writer.path, 'large.bin', randomBytes(20 * 1024 * 1024), 'twenty megabytes of noise');
          await gitOk([...auth(grove.token), '-c', 'pack.compression=0', 'push', '-q', url, 'HEAD:refs/heads/main'], { cwd: writer.path });
          const { id } = await grove.sdk.repos.get('acme', 'large');
          t = { grove, url, gitDir: path.join(grove.dataDir, 'repos', id.slice(-2), `${id}.git`) };
        });

        /** Sends a v2 fetch, reads the first chunk of the response, stops reading, waits for `ready`, then disconnects. */
        async function abortAfterFirstChunk(args: readonly string[], ready: () => Promise<void>): Promise<void> {
          const exchange = openPost(t, 'git-upload-pack', { 'Git-Protocol': 'version=2' });
          exchange.req.end(Buffer.concat([pkt('command=fetch\n'), pkt('object-format=sha1\n'), DELIM, ...args.map((arg) => pkt(`${arg}\n`)), pkt('done\n'), FLUSH]));
          const res = await exchange.response;
          assert.equal(res.statusCode, 200);
          // Take the first chunk, then stop reading: the server is left writing into a full socket.
          await new Promise<void>((resolve) => res.once('data', () => resolve()));
          res.pause();
          await ready();
          exchange.req.destroy();
          await exchange.done;
        }

        it('a client that stops reading and disconnects mid-fetch gets its upload-pack killed, and the server keeps serving', async () => {
          // A fetch with a `have` is never served from the pack cache: git's output goes straight to this client.
          await abortAfterFirstChunk(['ofs-delta', 'no-progress', `want ${large}`, `have ${main}`], () => waitForChild(t, /upload-pack/));
          await assertCleanedUp(t);
          assert.match(await lsRemote(t), new RegExp(`^${large}\\trefs/heads/main$`, 'm'));
          await assertCloneWorks(t);
        });

        it('a client that disconnects mid-clone leaves no git child behind, and the next clone is complete and intact', async () => {
          // A clone (no haves) may be produced once into the pack cache; the abandoned response must not poison it.
          await abortAfterFirstChunk(['ofs-delta', 'no-progress', `want ${large}`], () => delay(100));
          await assertCleanedUp(t);
          await assertCloneWorks(t, true);
        });

        it('killing git clone with SIGKILL after the first bytes arrive kills the server\'s git children', async () => {
          await using clone = await tempDir('grove-disconnect-killed-');
          const child = spawn('git', [...auth(grove.token), 'clone', '--progress', t.url, path.join(clone.path, 'c')], { env: gitEnv(), detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
          const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
          let stderr = '';
          const receiving = new Promise<boolean>((resolve) => {
            child.stderr.on('data', (chunk: Buffer) => {
              stderr += chunk.toString();
              if (/Receiving objects/.test(stderr)) resolve(true);
            });
            void exited.then(() => resolve(false));
          });
          assert.ok(await receiving, `git clone ended before receiving anything:\n${stderr}`);
          // Killed at once: 20 MiB are still on their way, so the clone cannot have finished. With the
          // pack cache the producer may run on (it serves others) or be done already; what must hold
          // is that no git child is left once the client is gone.
          process.kill(-child.pid!, 'SIGKILL'); // git clone and its remote helper: the group it leads
          assert.equal(await exited, 'SIGKILL');
          await assertCleanedUp(t);
          await assertCloneWorks(t, true);
        });
      });
    });

    describe('git process queue', { concurrency: 1 }, () => {
      async function cloneConcurrently(grove: TestServer, t: Target, count: number, whileRunning?: (running: ReadonlyArray<Promise<unknown>>) => Promise<void>): Promise<void> {
        await using clones = await tempDir('grove-queue-');
        const running = Array.from({ length: count }, (_, i) => git([...auth(grove.token), 'clone', '-q', t.url, path.join(clones.path, `c${i}`)]));
        await whileRunning?.(running);
        const results = await Promise.all(running);
        results.forEach((result, i) => assert.equal(result.code, 0, `clone ${i}:\n${result.stderr}`));
        for (let i = 0; i < count; i++) {
          assert.equal((await gitOk(['rev-parse', 'HEAD'], { cwd: path.join(clones.path, `c${i}`) })).trim(), main);
        }
      }

      it('with GROVE_MAX_GIT_PROCESSES=1, 10 concurrent clones of one repository all succeed', async () => {
        const grove = await server({ GROVE_MAX_GIT_PROCESSES: '1' });
        const t = await makeTarget(grove);
        await cloneConcurrently(grove, t, 10);
        await assertCleanedUp(t);
      });

      it('with GROVE_MAX_GIT_PROCESSES=1 held by a stalled push, clones wait in the queue and all succeed once it is free', async () => {
        const grove = await server({ GROVE_MAX_GIT_PROCESSES: '1' });
        const t = await makeTarget(grove);
        const other = await makeTarget(grove);
        const holder = openPost(other, 'git-receive-pack');
        holder.req.write(pushHead('refs/heads/main', main, big));
        holder.req.write(bigPack.subarray(0, 64 * 1024));
        await waitForChild(other, /index-pack/);
        const limiter = grove.server.repos.git.limiter;
        await cloneConcurrently(grove, t, 10, async (running) => {
          assert.ok(await waitFor(() => limiter.queued > 0, 10_000), 'no clone is waiting for the held slot');
          await delay(1000);
          const settled = await Promise.all(running.map((clone) => Promise.race([clone.then(() => true), delay(0).then(() => false)])));
          assert.deepEqual(settled.filter(Boolean).length, 0, 'a clone finished (or failed) while the only slot was held');
          assert.equal(limiter.running, 1);
          holder.req.destroy();
        });
        await holder.done;
        await assertCleanedUp(t);
        await assertCleanedUp(other);
      });

      it('with GROVE_MAX_GIT_PROCESSES_PER_REPO=1, 10 concurrent clones of one repository all succeed', async () => {
        const grove = await server({ GROVE_MAX_GIT_PROCESSES_PER_REPO: '1' });
        const t = await makeTarget(grove);
        await cloneConcurrently(grove, t, 10);
        await assertCleanedUp(t);
      });

      it('with GROVE_QUEUE_TIMEOUT_MS=200, a git request that cannot get the held slot gets a clear busy error, not a hang or 500', async () => {
        // Long enough for the setup push's own checks (two processes at once) to take turns in the one slot.
        const grove = await server({ GROVE_MAX_GIT_PROCESSES: '1', GROVE_QUEUE_TIMEOUT_MS: '200' });
        const t = await makeTarget(grove);
        const refsBefore = await lsRemote(t);
        // A stalled push holds the only slot with its index-pack.
        const holder = openPost(t, 'git-receive-pack');
        holder.req.write(pushHead('refs/heads/main', main, big));
        holder.req.write(bigPack.subarray(0, 64 * 1024));
        await waitForChild(t, /index-pack/);

        const v0 = await fetch(`${t.url}/info/refs?service=git-upload-pack`, { headers: { Authorization: `Bearer ${grove.token}` } });
        assert.equal(v0.status, 503);
        assert.equal(v0.headers.get('retry-after'), '5');
        assert.match(await v0.text(), /busy.*retry/);

        const v2 = await fetch(`${t.url}/git-upload-pack`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${grove.token}`, 'Content-Type': 'application/x-git-upload-pack-request', 'Git-Protocol': 'version=2' },
          body: Buffer.concat([pkt('command=fetch\n'), DELIM, pkt(`want ${main}\n`), pkt('done\n'), FLUSH]),
        });
        assert.equal(v2.status, 200);
        const lines = packets(Buffer.from(await v2.arrayBuffer()));
        assert.equal(lines.length, 1, JSON.stringify(lines));
        assert.match(lines[0]!, /^ERR .*busy/);

        await using clone = await tempDir('grove-busy-');
        const started = Date.now();
        const cloned = await git([...auth(grove.token), 'clone', t.url, path.join(clone.path, 'c')]);
        assert.notEqual(cloned.code, 0);
        assert.match(cloned.stderr, /busy/);
        assert.ok(Date.now() - started < 10_000, `git clone took ${Date.now() - started} ms to fail`);

        holder.req.destroy();
        await holder.done;
        await assertCleanedUp(t);
        assert.equal(await lsRemote(t), refsBefore);
        await assertCloneWorks(t);
      });
    });
  });

  describe('idle timeout (GROVE_IDLE_TIMEOUT_MS=1000)', { concurrency: 1 }, () => {
    let grove: TestServer;
    before(async () => {
      grove = await server({ GROVE_IDLE_TIMEOUT_MS: '1000' });
    });

    it('a push that stalls inside its pack is ended by the idle timeout and cleaned up', async () => {
      const t = await makeTarget(grove);
      const refsBefore = await lsRemote(t);
      const objectsBefore = await listFiles(path.join(t.gitDir, 'objects'));
      const exchange = openPost(t, 'git-receive-pack');
      exchange.req.write(pushHead('refs/heads/main', main, big));
      await new Promise((resolve) => exchange.req.write(bigPack.subarray(0, 64 * 1024), resolve));
      const stalledAt = Date.now();
      const ended = await Promise.race([exchange.done, delay(6000).then(() => null)]);
      exchange.req.destroy();
      assert.ok(ended !== null, 'the stalled push was still open after 6 s');
      const waited = ended.endedAt - stalledAt;
      assert.ok(waited >= 700 && waited < 6000, `ended after ${waited} ms`);
      await assertCleanedUp(t);
      assert.equal(await lsRemote(t), refsBefore);
      assert.deepEqual(await listFiles(path.join(t.gitDir, 'objects')), objectsBefore);
      await assertPushWorks(t);
    });

    it('a push that stalls inside its command list is ended by the idle timeout', async () => {
      const t = await makeTarget(grove);
      const refsBefore = await lsRemote(t);
      const exchange = openPost(t, 'git-receive-pack');
      await new Promise((resolve) => exchange.req.write(pushHead('refs/heads/main', main, small).subarray(0, 30), resolve));
      const stalledAt = Date.now();
      const ended = await Promise.race([exchange.done, delay(6000).then(() => null)]);
      exchange.req.destroy();
      assert.ok(ended !== null, 'the stalled push was still open after 6 s');
      const waited = ended.endedAt - stalledAt;
      assert.ok(waited < 6000, `ended after ${waited} ms`);
      await assertCleanedUp(t);
      assert.equal(await lsRemote(t), refsBefore);
    });

    it('a fetch whose negotiation body stalls is ended by the idle timeout', async () => {
      const t = await makeTarget(grove);
      const exchange = openPost(t, 'git-upload-pack', { 'Git-Protocol': 'version=2' });
      await new Promise((resolve) => exchange.req.write(Buffer.concat([pkt('command=fetch\n'), DELIM, pkt(`want ${main}\n`)]), resolve));
      const stalledAt = Date.now();
      const ended = await Promise.race([exchange.done, delay(6000).then(() => null)]);
      exchange.req.destroy();
      assert.ok(ended !== null, 'the stalled fetch was still open after 6 s');
      const waited = ended.endedAt - stalledAt;
      assert.ok(waited < 6000, `ended after ${waited} ms`);
      await assertCleanedUp(t);
    });

    // Regression: the idle timeout used to run while Grove itself was indexing after the last byte,
    // cutting its own push (and, through curl's retry, once re-applying it).
    it('a push whose indexing outlasts the idle timeout after the last byte is not cut and succeeds', async () => {
      const t = await makeTarget(grove);
      const objects = await Promise.all(
        [['commit', small], ['tree', `${small}^{tree}`], ['blob', `${small}:small.txt`]].map(async ([type, rev]) => ({
          type: ['', 'commit', 'tree', 'blob'].indexOf(type!),
          data: await gitBytes(['cat-file', type!, rev!], source),
        })),
      );
      const pack = slowToIndexPack(objects, 400);
      assert.ok(pack.length < 64 * 1024, `the pack is ${pack.length} bytes`);
      const exchange = openPost(t, 'git-receive-pack');
      const sentAt = Date.now();
      exchange.req.end(Buffer.concat([pushHead('refs/heads/deltas', '0'.repeat(40), small, 'report-status agent=disconnects/1'), pack]));
      const ended = await exchange.done;
      assert.equal(ended.error, null, `the push was cut ${ended.endedAt - sentAt} ms after its last byte: ${ended.error?.message}`);
      assert.equal(ended.status, 200);
      assert.deepEqual(packets(ended.bytes), ['unpack ok', 'ok refs/heads/deltas', '0000']);
      assert.match(await lsRemote(t), new RegExp(`^${small}\\trefs/heads/deltas$`, 'm'));
      await assertCleanedUp(t);
    });

    it('a slow but moving push (a byte every 300 ms for 3 s) is not cut and succeeds', async () => {
      const t = await makeTarget(grove);
      const exchange = openPost(t, 'git-receive-pack');
      exchange.req.write(pushHead('refs/heads/slow', '0'.repeat(40), small, 'report-status agent=disconnects/1'));
      // Ten single bytes 300 ms apart: 3 s in all, three times the idle timeout, never 1 s without a byte.
      const started = Date.now();
      let offset = 0;
      for (; offset < 10; offset++) {
        await delay(300);
        exchange.req.write(smallPack.subarray(offset, offset + 1));
      }
      assert.ok(Date.now() - started >= 3000);
      exchange.req.end(smallPack.subarray(offset));
      const ended = await exchange.done;
      assert.equal(ended.error, null, `the slow push was cut: ${ended.error?.message}`);
      assert.equal(ended.status, 200);
      assert.deepEqual(packets(ended.bytes), ['unpack ok', 'ok refs/heads/slow', '0000']);
      assert.match(await lsRemote(t), new RegExp(`^${small}\\trefs/heads/slow$`, 'm'));
      await assertCleanedUp(t);
    });
  });
});
