import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { createGzip } from 'node:zlib';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { auth, commitFile, git, gitEnv, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';

const ZERO_OID = '0'.repeat(40);

/** One pkt-line, framed exactly as given (no LF added). */
function pkt(payload: string | Buffer): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload;
  return Buffer.concat([Buffer.from((body.length + 4).toString(16).padStart(4, '0'), 'latin1'), body]);
}

const FLUSH = Buffer.from('0000');
const DELIM = Buffer.from('0001');

/** The pkt-lines of a response as text ('0000' for a flush); stops at the first unframed byte. */
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

/** Runs git with binary stdin/stdout (packs). */
function gitBytes(args: readonly string[], cwd: string, input?: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = execFile('git', [...args], { cwd, env: gitEnv(), encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`git ${args.join(' ')}: ${error.message}\n${stderr.toString()}`));
      resolve(stdout);
    });
    child.stdin?.on('error', () => {}); // git may exit before reading stdin (EPIPE)
    child.stdin?.end(input ?? '');
  });
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

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
      if (cmdline.includes(dataDir) || environ.includes(dataDir)) found.push(`${entry}: ${cmdline}`);
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
  readonly org: string;
  readonly name: string;
  readonly url: string;
  readonly gitDir: string;
}

interface Response {
  readonly status: number;
  readonly contentType: string | null;
  readonly bytes: Buffer;
  readonly text: string;
}

/** A request sent byte for byte as given (no URL normalisation), over node:http. */
function rawRequest(grove: TestServer, method: string, requestPath: string, headers: Record<string, string> = {}, body?: Buffer | string): Promise<Response> {
  const { hostname, port } = new URL(grove.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, method, path: requestPath, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.once('end', () => {
        const bytes = Buffer.concat(chunks);
        resolve({ status: res.statusCode!, contentType: res.headers['content-type'] ?? null, bytes, text: bytes.toString('utf8') });
      });
      res.once('error', reject);
    });
    req.once('error', reject);
    req.end(body);
  });
}

describe('hostile input is refused cleanly and leaves nothing behind', () => {
  let grove: TestServer;
  /** Small limits: 5 commands, 100 kB packs, 64 KiB of decoded negotiation. */
  let limited: TestServer;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let source: string;
  let main: string;
  /** A commit (with a new tree and blob) the servers do not have; its parent is main. */
  let extra: string;
  let target: Target;
  let limitedTarget: Target;

  async function makeTarget(server: TestServer, org: string, name: string): Promise<Target> {
    const url = await server.createRepo(org, name);
    await gitOk([...auth(server.token), 'push', '-q', url, 'main'], { cwd: source });
    const { id } = await server.sdk.repos.get(org, name);
    return { grove: server, org, name, url, gitDir: path.join(server.dataDir, 'repos', id.slice(-2), `${id}.git`) };
  }

  async function lsRemote(t: Target): Promise<string> {
    return gitOk([...auth(t.grove.token), 'ls-remote', t.url]);
  }

  async function quarantines(t: Target): Promise<string[]> {
    return (await readdir(path.join(t.gitDir, 'objects'))).filter((name) => name.startsWith('incoming-grove-'));
  }

  /** Waits (up to 10 s) for git children and quarantines to go, then asserts they did. */
  async function assertNothingLeft(t: Target): Promise<void> {
    let children: string[] = [];
    let left: string[] = [];
    for (let i = 0; i < 100; i++) {
      await delay(100);
      children = await processesUsing(t.grove.dataDir);
      left = await quarantines(t);
      if (children.length === 0 && left.length === 0) break;
    }
    assert.deepEqual(children, [], 'git children left running');
    assert.deepEqual(left, [], 'quarantine directories left in objects/');
  }

  /**
   * Runs an attack on `t` and checks what must hold after any hostile request: the refs
   * and every file under objects/ are as before, no quarantine or git child is left,
   * and a normal clone still works.
   */
  async function unchanged<T>(t: Target, attack: () => Promise<T>): Promise<T> {
    const refsBefore = await lsRemote(t);
    const objectsBefore = await listFiles(path.join(t.gitDir, 'objects'));
    const result = await attack();
    await assertNothingLeft(t);
    assert.equal(await lsRemote(t), refsBefore, 'refs changed');
    assert.deepEqual(await listFiles(path.join(t.gitDir, 'objects')), objectsBefore, 'objects/ changed');
    await using clone = await tempDir('grove-hostile-clone-');
    const cloned = await git([...auth(t.grove.token), 'clone', '-q', t.url, path.join(clone.path, 'c')]);
    assert.equal(cloned.code, 0, `a clone after the attack failed:\n${cloned.stderr}`);
    assert.equal((await gitOk(['rev-parse', 'HEAD'], { cwd: path.join(clone.path, 'c') })).trim(), main);
    return result;
  }

  async function post(t: Target, service: 'git-upload-pack' | 'git-receive-pack', body: Buffer, headers: Record<string, string> = {}): Promise<Response> {
    const response = await fetch(`${t.url}/${service}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${t.grove.token}`, 'Content-Type': `application/x-${service}-request`, ...headers },
      body,
    });
    const bytes = Buffer.from(await response.arrayBuffer());
    return { status: response.status, contentType: response.headers.get('content-type'), bytes, text: bytes.toString('utf8') };
  }

  /** A receive-pack request body: commands (caps on the first), flush, then `rest`. */
  function pushBody(commands: readonly string[], rest: Buffer = Buffer.alloc(0), caps = 'report-status agent=hostile/1'): Buffer {
    const lines = commands.map((command, index) => pkt(index === 0 ? `${command}\0${caps}\n` : `${command}\n`));
    return Buffer.concat([...lines, FLUSH, rest]);
  }

  /** Asserts a 200 whose body is a single ERR packet matching `pattern`. */
  function assertErr(response: Response, pattern: RegExp, contentType: string): void {
    assert.equal(response.status, 200, response.text);
    assert.equal(response.contentType, contentType);
    const lines = packets(response.bytes);
    assert.equal(lines.length, 1, `expected one ERR packet, got ${JSON.stringify(lines)}`);
    assert.match(lines[0]!, /^ERR /);
    assert.match(lines[0]!, pattern);
  }

  /** Asserts a receive-pack report: `unpack <unpack>` and one `ng <ref> <reason>`. */
  function assertReport(response: Response, unpack: RegExp, ref: string, reason: RegExp): void {
    assert.equal(response.status, 200, response.text);
    assert.equal(response.contentType, 'application/x-git-receive-pack-result');
    const lines = packets(response.bytes);
    assert.equal(lines.length, 3, `expected unpack, ng and flush, got ${JSON.stringify(lines)}`);
    assert.match(lines[0]!, /^unpack /);
    assert.match(lines[0]!, unpack);
    assert.match(lines[1]!, new RegExp(`^ng ${ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} `));
    assert.match(lines[1]!, reason);
    assert.equal(lines[2], '0000');
  }

  const RECEIVE_RESULT = 'application/x-git-receive-pack-result';
  const UPLOAD_RESULT = 'application/x-git-upload-pack-result';

  before(async () => {
    work = await tempDir('grove-hostile-');
    source = path.join(work.path, 'source');
    await initWorkRepo(source);
    await commitFile(source, 'README.md', '# hostile\n', 'first');
    main = await commitFile(source, 'src/app.txt', 'app\n', 'second');
    await gitOk(['checkout', '-q', '-b', 'extra'], { cwd: source });
    extra = await commitFile(source, 'src/extra.txt', 'not on the server yet\n', 'extra');
    await gitOk(['checkout', '-q', 'main'], { cwd: source });
    [grove, limited] = await Promise.all([
      startTestServer(),
      startTestServer({ GROVE_MAX_PUSH_COMMANDS: '5', GROVE_MAX_PACK_BYTES: '100000', GROVE_MAX_NEGOTIATION_BYTES: '65536' }),
    ]);
    target = await makeTarget(grove, 'acme', 'target');
    limitedTarget = await makeTarget(limited, 'acme', 'target');
  });
  after(async () => {
    await Promise.all([grove?.close(), limited?.close()]);
    await work?.[Symbol.asyncDispose]();
  });

  describe('receive-pack', () => {
    it('answers a command list with a bad hex length with an ERR packet', async () => {
      const response = await unchanged(target, () => post(target, 'git-receive-pack', Buffer.from(`00zz${ZERO_OID} ${extra} refs/heads/x\n0000`)));
      assertErr(response, /bad line length character/, RECEIVE_RESULT);
    });

    it('answers an oversize packet length (ffff) with an ERR packet', async () => {
      const response = await unchanged(target, () => post(target, 'git-receive-pack', Buffer.concat([Buffer.from('ffff'), randomBytes(70_000)])));
      assertErr(response, /bad line length 65535/, RECEIVE_RESULT);
    });

    it('answers a body that ends inside a packet with an ERR packet', async () => {
      const response = await unchanged(target, () => post(target, 'git-receive-pack', Buffer.from(`0068${ZERO_OID} ${extra} refs/heads/x`)));
      assertErr(response, /truncated pkt-line/, RECEIVE_RESULT);
    });

    it('answers a packet length of 0003 with an ERR packet', async () => {
      const response = await unchanged(target, () => post(target, 'git-receive-pack', Buffer.from('00030000')));
      assertErr(response, /bad line length 3/, RECEIVE_RESULT);
    });

    it('reports an unpack error and refuses the ref when garbage follows the flush instead of a pack', async () => {
      const body = pushBody([`${ZERO_OID} ${extra} refs/heads/garbage`], Buffer.from('this is not a pack at all, just words '.repeat(100)));
      const response = await unchanged(target, () => post(target, 'git-receive-pack', body));
      assertReport(response, /pack signature mismatch/, 'refs/heads/garbage', /unpacker error/);
    });

    it('answers an unknown capability with an ERR packet naming it', async () => {
      const pack = await gitBytes(['pack-objects', '--stdout', '--revs', '-q'], source, `${extra}\n^${main}\n`);
      const body = pushBody([`${ZERO_OID} ${extra} refs/heads/caps`], pack, 'report-status frobnicate-the-refs');
      const response = await unchanged(target, () => post(target, 'git-receive-pack', body));
      assertErr(response, /unknown capability "frobnicate-the-refs"/, RECEIVE_RESULT);
    });

    it('refuses a command with a bad ref name (refs/heads/a..b) and keeps its objects out of the repository', async () => {
      const pack = await gitBytes(['pack-objects', '--stdout', '--revs', '-q'], source, `${extra}\n^${main}\n`);
      const body = pushBody([`${ZERO_OID} ${extra} refs/heads/a..b`], pack);
      const response = await unchanged(target, () => post(target, 'git-receive-pack', body));
      assertReport(response, /^unpack ok$/, 'refs/heads/a..b', /funny refname.*\.\./);
    });

    it(`answers more commands than GROVE_MAX_PUSH_COMMANDS (5) with an ERR packet`, async () => {
      const commands = Array.from({ length: 6 }, (_, i) => `${ZERO_OID} ${main} refs/heads/many-${i}`);
      const emptyPack = await gitBytes(['pack-objects', '--stdout', '-q'], source, '');
      const response = await unchanged(limitedTarget, () => post(limitedTarget, 'git-receive-pack', pushBody(commands, emptyPack)));
      assertErr(response, /too many ref updates in one push \(limit 5\)/, RECEIVE_RESULT);
    });

    it('reports an unpack error for a corrupt pack (valid header, garbage body)', async () => {
      const header = Buffer.from('PACK\0\0\0\x02\0\0\0\x03', 'latin1');
      const body = pushBody([`${ZERO_OID} ${extra} refs/heads/corrupt`], Buffer.concat([header, randomBytes(4096)]));
      const response = await unchanged(target, () => post(target, 'git-receive-pack', body));
      assertReport(response, /^unpack (?!ok)\S/, 'refs/heads/corrupt', /unpacker error/);
    });

    it('reports an unpack error for a truncated pack', async () => {
      const pack = await gitBytes(['pack-objects', '--stdout', '--revs', '-q'], source, `${extra}\n^${main}\n`);
      const body = pushBody([`${ZERO_OID} ${extra} refs/heads/truncated`], pack.subarray(0, Math.floor(pack.length / 2)));
      const response = await unchanged(target, () => post(target, 'git-receive-pack', body));
      assertReport(response, /^unpack (?!ok)\S/, 'refs/heads/truncated', /unpacker error/);
    });

    it('refuses a pack whose commit references a tree the server does not have', async () => {
      // Only the commit object: its tree (and the new blob) are missing everywhere.
      const pack = await gitBytes(['pack-objects', '--stdout', '-q'], source, `${extra}\n`);
      const body = pushBody([`${ZERO_OID} ${extra} refs/heads/dangling`], pack);
      const response = await unchanged(target, () => post(target, 'git-receive-pack', body));
      assert.equal(response.status, 200, response.text);
      const lines = packets(response.bytes);
      assert.equal(lines.length, 3, JSON.stringify(lines));
      // Either index-pack --strict finds the missing link, or the connectivity check does.
      if (lines[0] === 'unpack ok') assert.match(lines[1]!, /^ng refs\/heads\/dangling missing necessary objects$/);
      else {
        assert.match(lines[0]!, /^unpack \S/);
        assert.match(lines[1]!, /^ng refs\/heads\/dangling unpacker error$/);
      }
    });

    it('refuses a push whose pack is bigger than GROVE_MAX_PACK_BYTES, and git prints why and exits non-zero', async () => {
      await using big = await tempDir('grove-hostile-big-');
      await gitOk(['clone', '-q', source, big.path]);
      await commitFile(big.path, 'random.bin', randomBytes(1024 * 1024), 'a megabyte of noise');
      const result = await unchanged(limitedTarget, () => git([...auth(limited.token), 'push', limitedTarget.url, 'HEAD:refs/heads/big'], { cwd: big.path }));
      assert.notEqual(result.code, 0, result.stderr);
      assert.match(result.stderr, /pack exceeds the maximum size of 100000 bytes/);
      assert.match(result.stderr, /! \[remote rejected\] HEAD -> big \(unpacker error\)/);
    });

    it('refuses a gzip-encoded push whose pack inflates past GROVE_MAX_PACK_BYTES, quickly and in bounded memory', async () => {
      const gzip = createGzip({ level: 9 });
      const compressed: Buffer[] = [];
      gzip.on('data', (chunk: Buffer) => compressed.push(chunk));
      gzip.write(pushBody([`${ZERO_OID} ${extra} refs/heads/bomb`], Buffer.from('PACK\0\0\0\x02\0\0\0\x05', 'latin1')));
      const zeros = Buffer.alloc(1024 * 1024);
      for (let i = 0; i < 50; i++) gzip.write(zeros);
      await new Promise((resolve) => gzip.end(resolve));
      const rssBefore = process.memoryUsage().rss;
      const started = Date.now();
      const response = await unchanged(limitedTarget, () => post(limitedTarget, 'git-receive-pack', Buffer.concat(compressed), { 'Content-Encoding': 'gzip' }));
      const growth = process.memoryUsage().rss - rssBefore;
      // Whichever comes first: the size limit, or index-pack finding that zeros are no object.
      assertReport(response, /^unpack (pack exceeds the maximum size of 100000 bytes|pack has bad object at offset 12: unknown object type 0)$/, 'refs/heads/bomb', /unpacker error/);
      assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
      assert.ok(growth < 100 * 1024 * 1024, `rss grew by ${Math.round(growth / 1024 / 1024)} MB`);
    });

    it('refuses a branch that points at a blob, mentioning commits', async () => {
      await using blobRepo = await tempDir('grove-hostile-blob-');
      await gitOk(['clone', '-q', source, blobRepo.path]);
      const blob = (await gitOk(['hash-object', '-w', '--stdin'], { cwd: blobRepo.path, input: 'a blob, not a commit\n' })).trim();
      const result = await unchanged(target, () => git([...auth(grove.token), 'push', target.url, `${blob}:refs/heads/blob`], { cwd: blobRepo.path }));
      assert.notEqual(result.code, 0, result.stderr);
      assert.match(result.stderr, /! \[remote rejected\] .* -> blob \(.*commit.*\)/);
    });
  });

  describe('upload-pack', () => {
    const v2 = { 'Git-Protocol': 'version=2' };

    it('answers a v2 request with bad pkt-lines with an ERR packet', async () => {
      await unchanged(target, async () => {
        for (const body of ['00zzcommand=ls-refs\n0000', '0003', 'ffff', '0030command=ls-refs\n']) {
          assertErr(await post(target, 'git-upload-pack', Buffer.from(body), v2), /protocol error/, UPLOAD_RESULT);
        }
      });
    });

    it('answers a v0 request with bad pkt-lines with an ERR packet from git', async () => {
      await unchanged(target, async () => {
        for (const body of ['zzzzwant 0000', `0032want ${main}\n0003`, `ffff${'x'.repeat(100)}`]) {
          assertErr(await post(target, 'git-upload-pack', Buffer.from(body)), /^ERR upload-pack: .*(protocol error|bad line length)/, UPLOAD_RESULT);
        }
      });
    });

    it('answers an unknown v2 command with an ERR packet naming it', async () => {
      const body = Buffer.concat([pkt('command=rm-rf\n'), pkt('agent=hostile/1\n'), DELIM, FLUSH]);
      const response = await unchanged(target, () => post(target, 'git-upload-pack', body, v2));
      assertErr(response, /invalid command 'rm-rf'/, UPLOAD_RESULT);
    });

    it('answers an unknown v2 capability with an ERR packet naming it', async () => {
      const body = Buffer.concat([pkt('command=ls-refs\n'), pkt('frobnicate=yes\n'), DELIM, FLUSH]);
      const response = await unchanged(target, () => post(target, 'git-upload-pack', body, v2));
      assertErr(response, /unknown capability 'frobnicate=yes'/, UPLOAD_RESULT);
    });

    it('answers a want of an object that does not exist with an ERR packet from git', async () => {
      const missing = 'deadbeef'.repeat(5);
      const body = Buffer.concat([pkt('command=fetch\n'), pkt('object-format=sha1\n'), DELIM, pkt(`want ${missing}\n`), pkt('done\n'), FLUSH]);
      const response = await unchanged(target, () => post(target, 'git-upload-pack', body, v2));
      assertErr(response, new RegExp(`not our ref ${missing}`), UPLOAD_RESULT);
    });

    it('makes git fetch of a nonexistent object fail with the server\'s message', async () => {
      await using fetcher = await tempDir('grove-hostile-fetch-');
      await initWorkRepo(fetcher.path);
      const missing = 'deadbeef'.repeat(5);
      const result = await unchanged(target, () => git([...auth(grove.token), '-c', 'protocol.version=2', 'fetch', target.url, missing], { cwd: fetcher.path }));
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /remote error: upload-pack: not our ref deadbeef/);
    });

    it('answers 400 to a gzip-encoded body that is not gzip', async () => {
      const response = await unchanged(target, () =>
        post(target, 'git-upload-pack', Buffer.from('0014command=ls-refs\n0000'), { ...v2, 'Content-Encoding': 'gzip' }),
      );
      assert.equal(response.status, 400, response.text);
      assert.match(response.text, /could not read the request body/);
    });

    it('answers a gzip bomb with 413 quickly, without inflating it in memory', async () => {
      // 50 MB of zeros, compressed as it is produced (about 50 kB on the wire).
      const gzip = createGzip({ level: 9 });
      const compressed: Buffer[] = [];
      gzip.on('data', (chunk: Buffer) => compressed.push(chunk));
      const zeros = Buffer.alloc(1024 * 1024);
      for (let i = 0; i < 50; i++) gzip.write(zeros);
      await new Promise((resolve) => gzip.end(resolve));
      const bomb = Buffer.concat(compressed);
      assert.ok(bomb.length < 200_000, `bomb is ${bomb.length} bytes`);
      const rssBefore = process.memoryUsage().rss;
      const started = Date.now();
      const response = await unchanged(limitedTarget, () => post(limitedTarget, 'git-upload-pack', bomb, { ...v2, 'Content-Encoding': 'gzip' }));
      const elapsed = Date.now() - started;
      const growth = process.memoryUsage().rss - rssBefore;
      assert.equal(response.status, 413, response.text);
      assert.match(response.text, /request body exceeds 65536 bytes after decoding/);
      assert.ok(elapsed < 10_000, `took ${elapsed} ms`);
      assert.ok(growth < 100 * 1024 * 1024, `rss grew by ${Math.round(growth / 1024 / 1024)} MB`);
    });
  });

  describe('paths', () => {
    const authHeader = () => ({ Authorization: `Bearer ${grove.token}` });

    for (const [what, requestPath] of [
      ['a path climbing out with ..', '/../../etc/passwd'],
      ['.. as the repo segment', '/acme/../info/refs?service=git-upload-pack'],
      ['encoded traversal', '/acme/..%2F..%2Fx.git/info/refs?service=git-upload-pack'],
      ['encoded traversal in the org', '/..%2F..%2Fetc/passwd.git/info/refs?service=git-upload-pack'],
      ['an encoded NUL in the repo name', '/acme/target%00.git/info/refs?service=git-upload-pack'],
      ['an encoded NUL before .git', '/acme/tar%00get/info/refs?service=git-upload-pack'],
      ['an uppercase repo name', '/acme/TARGET.git/info/refs?service=git-upload-pack'],
      ['an uppercase org name', '/ACME/target.git/info/refs?service=git-upload-pack'],
      ['a traversal on the receive-pack endpoint', '/acme/..%2Ftarget.git/git-receive-pack'],
    ] as const) {
      it(`answers ${what} with 404 or 400, never 500`, async () => {
        const method = requestPath.endsWith('git-receive-pack') ? 'POST' : 'GET';
        const headers: Record<string, string> = method === 'POST'
          ? { ...authHeader(), 'Content-Type': 'application/x-git-receive-pack-request' }
          : authHeader();
        const body = method === 'POST' ? pushBody([`${ZERO_OID} ${main} refs/heads/escaped`], await gitBytes(['pack-objects', '--stdout', '-q'], source, '')) : undefined;
        const response = await unchanged(target, () => rawRequest(grove, method, requestPath, headers, body));
        assert.ok([400, 404].includes(response.status), `${response.status}: ${response.text.slice(0, 300)}`);
        assert.doesNotMatch(response.text, /root:|internal/);
      });
    }

    // Longer than the router's maxParamLength: refused before routing, still in Grove's error shape.
    for (const [what, requestPath] of [
      ['a 10,000-character repo name on a git route', `/acme/${'a'.repeat(10_000)}.git/info/refs?service=git-upload-pack`],
      ['a 10,000-character repo name on the API', `/api/v1/repos/acme/${'a'.repeat(10_000)}`],
    ] as const) {
      it(`answers ${what} with a 4xx in Grove's error shape, never 500`, async () => {
        const response = await unchanged(target, () => rawRequest(grove, 'GET', requestPath, authHeader()));
        assert.ok([400, 404, 414].includes(response.status), `${response.status}: ${response.text.slice(0, 300)}`);
        if (response.contentType?.startsWith('application/json')) {
          const body = JSON.parse(response.text) as { error?: { code?: unknown; message?: unknown } };
          assert.equal(typeof body.error?.code, 'string', `not Grove's error shape: ${response.text.slice(0, 200)}`);
          assert.equal(typeof body.error?.message, 'string');
        }
      });
    }
  });

  describe('JSON API', () => {
    async function api(method: string, urlPath: string, body?: string): Promise<{ status: number; json: unknown }> {
      const response = await fetch(`${grove.url}${urlPath}`, {
        method,
        headers: { Authorization: `Bearer ${grove.token}`, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
        ...(body !== undefined ? { body } : {}),
      });
      const text = await response.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = text;
      }
      return { status: response.status, json };
    }

    function assertError(result: { status: number; json: unknown }, status: number, codes: readonly string[]): void {
      assert.equal(result.status, status, JSON.stringify(result.json));
      const error = (result.json as { error?: { code?: unknown; message?: unknown } }).error;
      assert.ok(codes.includes(error?.code as string), JSON.stringify(result.json));
      assert.equal(typeof error?.message, 'string');
      assert.ok((error!.message as string).length > 0);
    }

    it('answers wrong-shape JSON bodies with 400 and the error shape', async () => {
      const cases: Array<[string, string, string]> = [
        ['POST', '/api/v1/orgs', '[]'],
        ['POST', '/api/v1/orgs', '[{"name":"acme2"}]'],
        ['POST', '/api/v1/orgs', '"acme2"'],
        ['POST', '/api/v1/orgs', 'null'],
        ['POST', '/api/v1/orgs', '{"name":{"nested":[1,{"deeper":[null,true,{"x":"y"}]}]}}'],
        ['POST', '/api/v1/orgs', '{"name":"acme3","extra":{"junk":[[[[[]]]]]}}'],
        ['POST', '/api/v1/orgs', '{"name":'],
        ['POST', '/api/v1/orgs/acme/repos', '[["name","x"]]'],
        ['POST', '/api/v1/orgs/acme/repos', '{"name":["a","b"]}'],
        ['POST', '/api/v1/orgs/acme/repos', '{"name":"ok-name","defaultBranch":{"$ne":null}}'],
        ['PATCH', '/api/v1/repos/acme/target', '[]'],
        ['PATCH', '/api/v1/repos/acme/target', '{"description":{"a":1}}'],
        ['PUT', '/api/v1/repos/acme/target/policies', '{"rules":[{"nested":{"junk":[1,2,3]}}]}'],
        ['PUT', '/api/v1/repos/acme/target/policies', '{"rules":"not-a-list"}'],
      ];
      await unchanged(target, async () => {
        for (const [method, urlPath, body] of cases) {
          const result = await api(method, urlPath, body);
          assert.equal(result.status, 400, `${method} ${urlPath} ${body}: ${result.status} ${JSON.stringify(result.json)}`);
          assertError(result, 400, ['invalid_request', 'invalid_name']);
        }
      });
      const orgs = await api('GET', '/api/v1/orgs');
      assert.equal(orgs.status, 200);
      assert.deepEqual((orgs.json as { items: Array<{ name: string }> }).items.map((o) => o.name), ['acme']);
    });

    it('answers a 2 MB JSON body with 413 and the error shape', async () => {
      const body = JSON.stringify({ name: 'huge', description: 'x'.repeat(2 * 1024 * 1024) });
      const result = await unchanged(target, () => api('POST', '/api/v1/orgs/acme/repos', body));
      assertError(result, 413, ['payload_too_large']);
    });
  });

  describe('HTTP surface of the git routes', () => {
    it('answers an unknown service= value with 403', async () => {
      await unchanged(target, async () => {
        for (const service of ['git-upload-archive', 'git-receive-pack%00', 'rm', '']) {
          const response = await rawRequest(grove, 'GET', `/acme/target.git/info/refs?service=${service}`, { Authorization: `Bearer ${grove.token}` });
          assert.equal(response.status, 403, `service=${service}: ${response.text}`);
          assert.match(response.text, /smart HTTP/);
        }
      });
    });

    it('answers a POST to info/refs with 404 or 405', async () => {
      const response = await unchanged(target, () =>
        rawRequest(grove, 'POST', '/acme/target.git/info/refs?service=git-upload-pack', { Authorization: `Bearer ${grove.token}`, 'Content-Type': 'application/x-git-upload-pack-request' }, '0000'),
      );
      assert.ok([404, 405].includes(response.status), `${response.status}: ${response.text}`);
    });

    const lsRefs = Buffer.concat([pkt('command=ls-refs\n'), DELIM, FLUSH]);
    const wrongTypes = {
      'git-upload-pack': [
        ['application/octet-stream', lsRefs],
        ['application/x-www-form-urlencoded', lsRefs],
        ['text/plain', lsRefs],
        ['application/json', lsRefs],
        ['application/json', Buffer.from(JSON.stringify(lsRefs.toString('latin1')))],
        ['application/x-git-receive-pack-request', lsRefs],
      ],
      'git-receive-pack': [
        ['application/octet-stream', FLUSH],
        ['text/plain', FLUSH],
        ['application/json', Buffer.from('{"commands":[]}')],
        ['application/x-git-upload-pack-request', FLUSH],
      ],
    } as const;
    for (const [service, cases] of Object.entries(wrongTypes) as Array<[keyof typeof wrongTypes, ReadonlyArray<readonly [string, Buffer]>]>) {
      // Regression: types without a registered parser used to get the REST API's JSON 415 body, which
      // told a git client the wrong thing.
      it(`answers a ${service} POST with any other Content-Type (octet-stream, text, JSON, the other service's) with 415 naming the expected type`, async () => {
        await unchanged(target, async () => {
          const problems: string[] = [];
          for (const [contentType, body] of cases) {
            const response = await post(target, service, body, { 'Git-Protocol': 'version=2', 'Content-Type': contentType });
            const what = `Content-Type ${contentType} with ${JSON.stringify(body.toString('latin1'))}`;
            if (response.status !== 415) problems.push(`${what}: ${response.status} ${response.text.trim()}`);
            else if (!response.text.includes(`application/x-${service}-request`)) problems.push(`${what}: 415 without the expected type: ${response.text.trim()}`);
          }
          assert.deepEqual(problems, []);
        });
      });
    }
  });
});
