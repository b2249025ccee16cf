import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { auth, commitFile, generateHistory, git, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';

// --- pkt-line helpers (gitprotocol-common): 4 hex digits of length, counting themselves ---

const FLUSH = Buffer.from('0000');
const DELIM = Buffer.from('0001');

function pkt(line: string): Buffer {
  const payload = Buffer.from(line, 'utf8');
  return Buffer.concat([Buffer.from((payload.length + 4).toString(16).padStart(4, '0'), 'ascii'), payload]);
}

/** A protocol v2 command request: command, capability lines, delim, arguments, flush. */
function v2Request(command: string, capabilities: readonly string[], args: readonly string[]): Buffer {
  return Buffer.concat([
    pkt(`command=${command}\n`),
    ...capabilities.map((line) => pkt(`${line}\n`)),
    DELIM,
    ...args.map((line) => pkt(`${line}\n`)),
    FLUSH,
  ]);
}

/** Splits a complete body into packets: text payloads without their LF, and `<flush>` / `<delim>` markers. */
function parsePackets(body: Buffer): string[] {
  const packets: string[] = [];
  let offset = 0;
  while (offset < body.length) {
    assert.ok(body.length - offset >= 4, `truncated pkt-line length at byte ${offset}`);
    const header = body.toString('ascii', offset, offset + 4);
    assert.match(header, /^[0-9a-f]{4}$/, `bad pkt-line length ${JSON.stringify(header)} at byte ${offset}`);
    const length = parseInt(header, 16);
    if (length === 0) packets.push('<flush>');
    else if (length === 1) packets.push('<delim>');
    else {
      assert.ok(length > 4 && offset + length <= body.length, `bad or truncated packet of length ${length} at byte ${offset}`);
      packets.push(body.toString('utf8', offset + 4, offset + length).replace(/\n$/, ''));
    }
    offset += length < 4 ? 4 : length;
  }
  return packets;
}

/** Commits on a linear main branch, one per day from 2020-01-01, each rewriting two files. */
async function datedHistory(dir: string, days: number): Promise<void> {
  await initWorkRepo(dir);
  let log = '';
  for (let day = 1; day <= days; day++) {
    const date = `2020-01-${String(day).padStart(2, '0')}T12:00:00+0000`;
    log += `entry ${day}\n`;
    const env = { GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date };
    await mkdir(path.join(dir, 'docs'), { recursive: true });
    await writeFile(path.join(dir, 'history.txt'), log);
    await writeFile(path.join(dir, 'docs', 'latest.txt'), `day ${day}\n`);
    await gitOk(['add', '-A'], { cwd: dir });
    await gitOk(['commit', '-q', '-m', `day ${day}`], { cwd: dir, env });
  }
}

/** Branches (from refs/heads) and tags of a work repository, as `refname -> oid`. */
async function sourceRefs(dir: string): Promise<Record<string, string>> {
  const out = await gitOk(['for-each-ref', '--format=%(refname) %(objectname)', 'refs/heads', 'refs/tags'], { cwd: dir });
  return Object.fromEntries(out.trim().split('\n').map((line) => line.split(' ') as [string, string]));
}

/** What a clone got: its remote-tracking branches mapped back to refs/heads, and its tags. */
async function clonedRefs(dir: string): Promise<Record<string, string>> {
  const out = await gitOk(['for-each-ref', '--format=%(refname) %(objectname)', 'refs/remotes/origin', 'refs/tags'], { cwd: dir });
  const refs: Record<string, string> = {};
  for (const line of out.trim().split('\n')) {
    const [name, oid] = line.split(' ') as [string, string];
    if (name === 'refs/remotes/origin/HEAD') continue;
    refs[name.replace(/^refs\/remotes\/origin\//, 'refs/heads/')] = oid;
  }
  return refs;
}

async function revCount(dir: string, rev = 'HEAD'): Promise<number> {
  return Number((await gitOk(['rev-list', '--count', rev], { cwd: dir })).trim());
}

async function isShallow(dir: string): Promise<boolean> {
  return (await gitOk(['rev-parse', '--is-shallow-repository'], { cwd: dir })).trim() === 'true';
}

/** `?<oid>` lines of `rev-list --objects --all --missing=print`, without the `?`. */
async function missingObjects(dir: string): Promise<Set<string>> {
  const out = await gitOk(['rev-list', '--objects', '--all', '--missing=print'], { cwd: dir });
  return new Set(out.split('\n').filter((line) => line.startsWith('?')).map((line) => line.slice(1)));
}

async function revParse(dir: string, ...revs: string[]): Promise<string[]> {
  return (await gitOk(['rev-parse', ...revs], { cwd: dir })).trim().split('\n');
}

/** `git count-objects -v` as numbers (loose `count`, `packs`, ...). */
async function countObjects(dir: string): Promise<Record<string, number>> {
  const out = await gitOk(['count-objects', '-v'], { cwd: dir });
  return Object.fromEntries(out.trim().split('\n').map((line) => {
    const [key, value] = line.split(': ') as [string, string];
    return [key, Number(value)];
  }));
}

describe('git fetch over smart HTTP', () => {
  let grove: TestServer;
  let work: Awaited<ReturnType<typeof tempDir>>;
  /** A generated history: main, feature-5, feature-10, tags v1.0 (annotated) and light. */
  let source: string;
  /** 12 dated linear commits (2020-01-01 … 2020-01-12), pushed to `datedUrl`. */
  let dated: string;
  let datedUrl: string;
  let counter = 0;

  const dir = (name: string) => path.join(work.path, `${name}-${++counter}`);

  /** A new server repository holding every branch and tag of `source`. */
  async function seededRepo(name: string): Promise<string> {
    const url = await grove.createRepo('fetchers', name);
    await gitOk([...auth(grove.token), 'push', '-q', url, 'refs/heads/*:refs/heads/*', 'refs/tags/*:refs/tags/*'], { cwd: source });
    return url;
  }

  /** A local clone of `source` to write new commits from, pushing to `url`. */
  async function writerFor(url: string): Promise<string> {
    const writer = dir('writer');
    await gitOk(['clone', '-q', source, writer]);
    await gitOk(['remote', 'set-url', 'origin', url], { cwd: writer });
    return writer;
  }

  async function uploadPack(url: string, body: Buffer, headers: Record<string, string> = {}) {
    const response = await fetch(`${url}/git-upload-pack`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${grove.token}`,
        'Content-Type': 'application/x-git-upload-pack-request',
        'Git-Protocol': 'version=2',
        ...headers,
      },
      body,
    });
    const bytes = Buffer.from(await response.arrayBuffer());
    return { status: response.status, contentType: response.headers.get('content-type'), bytes };
  }

  before(async () => {
    grove = await startTestServer();
    work = await tempDir('grove-fetch-');
    source = path.join(work.path, 'source');
    await generateHistory(source, 10);
    dated = path.join(work.path, 'dated');
    await datedHistory(dated, 12);
    datedUrl = await grove.createRepo('fetchers', 'dated');
    await gitOk([...auth(grove.token), 'push', '-q', datedUrl, 'main'], { cwd: dated });
  });
  after(async () => {
    await grove.close();
    await work[Symbol.asyncDispose]();
  });

  for (const version of [2, 0, 1] as const) {
    it(`clones and fetches with protocol.version=${version}, getting the same refs as the source`, async () => {
      const url = await seededRepo(`proto-v${version}`);
      const clone = dir(`clone-v${version}`);
      const protocol = ['-c', `protocol.version=${version}`];
      const cloned = await git([...auth(grove.token), ...protocol, 'clone', url, clone], { env: { GIT_TRACE_PACKET: '1' } });
      assert.equal(cloned.code, 0, cloned.stderr);
      // The version actually spoken: v2 and v1 announce themselves right after the service header.
      const announced = /packet:\s+\S*git< version ([12])/.exec(cloned.stderr)?.[1];
      assert.equal(announced, version === 0 ? undefined : String(version));
      assert.deepEqual(await clonedRefs(clone), await sourceRefs(source));
      assert.equal((await gitOk(['symbolic-ref', 'HEAD'], { cwd: clone })).trim(), 'refs/heads/main');

      const writer = await writerFor(url);
      const tip = await commitFile(writer, `v${version}/new.txt`, `pushed for v${version}\n`, `new commit for v${version}`);
      await gitOk(['tag', '-a', `fetched-v${version}`, '-m', 'a tag to follow'], { cwd: writer });
      await gitOk([...auth(grove.token), 'push', '-q', 'origin', 'main', `fetched-v${version}`, `HEAD:refs/heads/topic-v${version}`], { cwd: writer });

      const fetched = await git([...auth(grove.token), ...protocol, 'fetch', 'origin'], { cwd: clone });
      assert.equal(fetched.code, 0, fetched.stderr);
      assert.match(fetched.stderr, new RegExp(`\\* \\[new branch\\]\\s+topic-v${version}\\s+-> origin/topic-v${version}`));
      const [tag] = await revParse(writer, `refs/tags/fetched-v${version}`);
      assert.deepEqual(await clonedRefs(clone), {
        ...(await sourceRefs(source)),
        'refs/heads/main': tip,
        [`refs/heads/topic-v${version}`]: tip,
        [`refs/tags/fetched-v${version}`]: tag,
      });
      assert.deepEqual(await revParse(clone, 'origin/main', `origin/topic-v${version}`, `fetched-v${version}^{}`), [tip, tip, tip]);
    });
  }

  it('fetches only the new commits after a push (incremental fetch)', async () => {
    const url = await seededRepo('incremental');
    const clone = dir('incremental');
    await gitOk([...auth(grove.token), 'clone', '-q', url, clone]);
    const before = await countObjects(clone);
    assert.equal(before.count, 0, 'a fresh clone keeps everything in its pack');
    const oldTip = (await revParse(clone, 'origin/main'))[0]!;

    const writer = await writerFor(url);
    await commitFile(writer, 'incremental/one.txt', 'one\n', 'first new commit');
    const tip = await commitFile(writer, 'incremental/two.txt', 'two\n', 'second new commit');
    await gitOk([...auth(grove.token), 'push', '-q', 'origin', 'main'], { cwd: writer });
    const expected = (await gitOk(['rev-list', '--objects', tip, '--not', oldTip], { cwd: writer })).trim().split('\n');

    const fetched = await git([...auth(grove.token), 'fetch', 'origin'], { cwd: clone });
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.match(fetched.stderr, new RegExp(`${oldTip.slice(0, 7)}\\.\\.${tip.slice(0, 7)}\\s+main\\s+-> origin/main`));
    assert.equal((await revParse(clone, 'origin/main'))[0], tip);
    assert.equal(await revCount(clone, `${oldTip}..origin/main`), 2);
    // Fewer than transfer.unpackLimit (100) objects arrive loose: exactly the new ones, no second pack.
    const afterFetch = await countObjects(clone);
    assert.equal(afterFetch.packs, before.packs, 'the fetch should not have produced a pack (too many objects sent?)');
    assert.equal(afterFetch.count, expected.length);
    await gitOk(['fsck', '--strict', '--no-dangling'], { cwd: clone });
  });

  for (const version of [2, 0] as const) {
    it(`clones with --depth 1, deepens by 2 and unshallows with protocol.version=${version}`, async () => {
      const protocol = ['-c', `protocol.version=${version}`];
      const clone = dir(`shallow-v${version}`);
      await gitOk([...auth(grove.token), ...protocol, 'clone', '-q', '--depth', '1', datedUrl, clone]);
      assert.equal(await revCount(clone), 1);
      assert.equal(await isShallow(clone), true);
      assert.equal((await revParse(clone, 'HEAD'))[0], (await revParse(dated, 'HEAD'))[0]);

      await gitOk([...auth(grove.token), ...protocol, 'fetch', '-q', '--deepen', '2'], { cwd: clone });
      assert.equal(await revCount(clone), 3);
      assert.equal(await isShallow(clone), true);

      await gitOk([...auth(grove.token), ...protocol, 'fetch', '-q', '--unshallow'], { cwd: clone });
      assert.equal(await revCount(clone), 12);
      assert.equal(await isShallow(clone), false);
      await gitOk(['fsck', '--strict', '--no-dangling'], { cwd: clone });
    });
  }

  it('clones with --shallow-since only the commits after the date', async () => {
    const clone = dir('since');
    await gitOk([...auth(grove.token), 'clone', '-q', '--shallow-since=2020-01-09 00:00:00 +0000', datedUrl, clone]);
    assert.equal(await isShallow(clone), true);
    assert.equal(await revCount(clone), 4); // 9, 10, 11 and 12 January
    const subjects = (await gitOk(['log', '--format=%s'], { cwd: clone })).trim().split('\n');
    assert.deepEqual(subjects, ['day 12', 'day 11', 'day 10', 'day 9']);
  });

  it('clones with --filter=blob:none, lists the missing blobs and fetches them lazily on checkout', async () => {
    const clone = dir('blobless');
    const cloned = await git([...auth(grove.token), 'clone', '--filter=blob:none', datedUrl, clone]);
    assert.equal(cloned.code, 0, cloned.stderr);
    assert.equal((await gitOk(['config', 'remote.origin.promisor'], { cwd: clone })).trim(), 'true');
    // Every blob of the 11 older commits is missing; HEAD's blobs came with the checkout.
    const older: string[] = [];
    for (let k = 1; k <= 11; k++) older.push(`HEAD~${k}:history.txt`, `HEAD~${k}:docs/latest.txt`);
    const expectedMissing = new Set(await revParse(dated, ...older));
    assert.equal(expectedMissing.size, 22);
    assert.deepEqual(await missingObjects(clone), expectedMissing);

    const checkout = await git([...auth(grove.token), 'checkout', '-q', 'HEAD~3'], { cwd: clone });
    assert.equal(checkout.code, 0, checkout.stderr);
    assert.equal(await git(['show', 'HEAD:history.txt'], { cwd: clone }).then((r) => r.stdout), 'entry 1\nentry 2\nentry 3\nentry 4\nentry 5\nentry 6\nentry 7\nentry 8\nentry 9\n');
    const [history, latest] = await revParse(dated, 'HEAD~3:history.txt', 'HEAD~3:docs/latest.txt');
    const stillMissing = await missingObjects(clone);
    assert.equal(stillMissing.has(history!), false);
    assert.equal(stillMissing.has(latest!), false);
    assert.equal(stillMissing.size, 20);
  });

  it('clones with --filter=tree:0, lists the missing trees and fetches them lazily on checkout', async () => {
    const clone = dir('treeless');
    const cloned = await git([...auth(grove.token), 'clone', '--filter=tree:0', datedUrl, clone]);
    assert.equal(cloned.code, 0, cloned.stderr);
    assert.equal(await revCount(clone), 12, 'a treeless clone still has every commit');
    // Without their root trees, git cannot even see the older commits' subtrees and blobs.
    const roots: string[] = [];
    for (let k = 1; k <= 11; k++) roots.push(`HEAD~${k}^{tree}`);
    const expectedMissing = new Set(await revParse(dated, ...roots));
    assert.deepEqual(await missingObjects(clone), expectedMissing);

    const checkout = await git([...auth(grove.token), 'checkout', '-q', 'HEAD~5'], { cwd: clone });
    assert.equal(checkout.code, 0, checkout.stderr);
    assert.equal(await readFile(path.join(clone, 'docs', 'latest.txt'), 'utf8'), 'day 7\n');
    const stillMissing = await missingObjects(clone);
    assert.equal(stillMissing.has((await revParse(dated, 'HEAD~5^{tree}'))[0]!), false);
    assert.equal(stillMissing.size, 10);
  });

  it('advertises protocol v2 on info/refs with the exact content type and header', async () => {
    const url = await seededRepo('raw-advertisement');
    const response = await fetch(`${url}/info/refs?service=git-upload-pack`, {
      headers: { Authorization: `Bearer ${grove.token}`, 'Git-Protocol': 'version=2' },
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'application/x-git-upload-pack-advertisement');
    const body = Buffer.from(await response.arrayBuffer());
    assert.equal(body.toString('latin1', 0, 48), '001e# service=git-upload-pack\n0000000eversion 2\n');
    const packets = parsePackets(body);
    assert.equal(packets.at(-1), '<flush>');
    assert.ok(packets.some((line) => /^fetch=.*\bshallow\b/.test(line)), packets.join(' | '));
    assert.ok(packets.includes('ls-refs=unborn'), packets.join(' | '));
  });

  it('answers ls-refs with symrefs, peel and ref-prefix refs/tags/: only tags, annotated ones peeled', async () => {
    const url = await seededRepo('raw-ls-refs');
    const result = await uploadPack(url, v2Request('ls-refs', ['object-format=sha1'], ['symrefs', 'peel', 'ref-prefix refs/tags/']));
    assert.equal(result.status, 200);
    assert.equal(result.contentType, 'application/x-git-upload-pack-result');
    const [light, annotated, peeled] = await revParse(source, 'refs/tags/light', 'refs/tags/v1.0', 'refs/tags/v1.0^{}');
    assert.notEqual(annotated, peeled);
    assert.deepEqual(parsePackets(result.bytes), [
      `${light} refs/tags/light`,
      `${annotated} refs/tags/v1.0 peeled:${peeled}`,
      '<flush>',
    ]);
  });

  it('answers ls-refs with unborn on an empty repository with the unborn HEAD', async () => {
    const url = await grove.createRepo('fetchers', 'raw-empty');
    const result = await uploadPack(url, v2Request('ls-refs', ['object-format=sha1'], ['symrefs', 'unborn', 'ref-prefix HEAD', 'ref-prefix refs/heads/']));
    assert.equal(result.status, 200);
    assert.deepEqual(parsePackets(result.bytes), ['unborn HEAD symref-target:refs/heads/main', '<flush>']);
    // Without `unborn` an unborn HEAD is not listed at all.
    const plain = await uploadPack(url, v2Request('ls-refs', [], ['symrefs']));
    assert.deepEqual(parsePackets(plain.bytes), ['<flush>']);
  });

  // git 2.39's ls-refs (send_possibly_unborn_head) lists an unborn HEAD only when both `unborn` and
  // `symrefs` are sent; gitprotocol-v2 defines only the form "unborn HEAD symref-target:<target>".
  it('does not report an unborn HEAD to ls-refs with unborn but without symrefs, as git does', async () => {
    const url = await grove.createRepo('fetchers', 'raw-unborn-no-symrefs');
    const result = await uploadPack(url, v2Request('ls-refs', ['object-format=sha1'], ['unborn']));
    assert.equal(result.status, 200);
    assert.deepEqual(parsePackets(result.bytes), ['<flush>']);
  });

  // git peels all the way down (v0 advertisement, and v2 ls-refs via peel_iterated_oid); for-each-ref's
  // `%(*objectname)` dereferences only once, which would name the inner tag object instead.
  it('peels a tag of a tag down to the commit in ls-refs and in git ls-remote over v2, as over v0', async () => {
    const url = await seededRepo('nested-tags');
    const writer = await writerFor(url);
    await gitOk(['tag', '-a', 'outer', '-m', 'a tag of a tag', 'v1.0'], { cwd: writer });
    await gitOk([...auth(grove.token), 'push', '-q', 'origin', 'outer'], { cwd: writer });
    const [outer, inner, commit] = await revParse(writer, 'refs/tags/outer', 'refs/tags/v1.0', 'refs/tags/outer^{}');
    assert.notEqual(inner, commit);

    for (const version of [0, 2]) {
      const listed = await gitOk([...auth(grove.token), '-c', `protocol.version=${version}`, 'ls-remote', url, 'refs/tags/outer*']);
      assert.equal(listed, `${outer}\trefs/tags/outer\n${commit}\trefs/tags/outer^{}\n`, `protocol.version=${version}`);
    }
    const result = await uploadPack(url, v2Request('ls-refs', ['object-format=sha1'], ['peel', 'ref-prefix refs/tags/outer']));
    assert.deepEqual(parsePackets(result.bytes), [`${outer} refs/tags/outer peeled:${commit}`, '<flush>']);
  });

  it('answers object-info with the size of a known blob', async () => {
    const url = await seededRepo('raw-object-info');
    const [blob] = await revParse(source, 'HEAD:assets/logo.bin');
    const result = await uploadPack(url, v2Request('object-info', ['object-format=sha1'], ['size', `oid ${blob}`]));
    assert.equal(result.status, 200);
    assert.equal(result.contentType, 'application/x-git-upload-pack-result');
    assert.deepEqual(parsePackets(result.bytes), ['size', `${blob} 65536`, '<flush>']);
  });

  it('answers an unknown v2 command, capability or argument with 200 and an ERR packet', async () => {
    const url = await seededRepo('raw-errors');
    const requests = {
      'unknown command': v2Request('frobnicate', ['object-format=sha1'], []),
      'unknown capability': v2Request('ls-refs', ['object-format=sha1', 'frobnicate=yes'], ['symrefs']),
      'unknown ls-refs argument': v2Request('ls-refs', [], ['frobnicate']),
      'unknown fetch argument': v2Request('fetch', ['object-format=sha1'], ['frobnicate', 'done']),
    };
    for (const [what, body] of Object.entries(requests)) {
      const result = await uploadPack(url, body);
      assert.equal(result.status, 200, what);
      assert.equal(result.contentType, 'application/x-git-upload-pack-result', what);
      const packets = parsePackets(result.bytes);
      assert.equal(packets.length, 1, `${what}: ${packets.join(' | ')}`);
      assert.match(packets[0]!, /^ERR \S/, what);
    }
    // The server is fine afterwards.
    const ok = await uploadPack(url, v2Request('ls-refs', [], ['ref-prefix refs/heads/main']));
    assert.deepEqual(parsePackets(ok.bytes), [`${(await revParse(source, 'main'))[0]} refs/heads/main`, '<flush>']);
  });

  it('accepts a gzip-compressed upload-pack request body', async () => {
    const url = await seededRepo('raw-gzip');
    const body = v2Request('ls-refs', ['object-format=sha1'], ['symrefs', 'peel', ...Array.from({ length: 60 }, (_, i) => `ref-prefix refs/nothing-${i}/`), 'ref-prefix refs/heads/']);
    assert.ok(body.length > 1024);
    const plain = await uploadPack(url, body);
    const gzipped = await uploadPack(url, gzipSync(body), { 'Content-Encoding': 'gzip' });
    assert.equal(gzipped.status, 200);
    const packets = parsePackets(gzipped.bytes);
    assert.deepEqual(packets, parsePackets(plain.bytes));
    const heads = await sourceRefs(source);
    assert.deepEqual(
      packets.filter((line) => line !== '<flush>'),
      Object.entries(heads).filter(([name]) => name.startsWith('refs/heads/')).map(([name, oid]) => `${oid} ${name}`),
    );
  });

  it('fetches into a repository with 150 commits the server does not know (gzip-encoded negotiation)', async () => {
    const url = await seededRepo('gzip-negotiation');
    const local = dir('unrelated');
    await initWorkRepo(local);
    let stream = '';
    for (let i = 1; i <= 150; i++) {
      const content = `unrelated ${i}\n`;
      const message = `unrelated commit ${i}\n`;
      stream += `commit refs/heads/main\ncommitter Agent Seven <agent7@example.com> ${1_600_000_000 + i * 60} +0000\n`;
      stream += `data ${Buffer.byteLength(message)}\n${message}M 644 inline unrelated.txt\ndata ${Buffer.byteLength(content)}\n${content}\n`;
    }
    await gitOk(['fast-import', '--quiet'], { cwd: local, input: stream });
    assert.equal(await revCount(local, 'main'), 150);

    const fetched = await git([...auth(grove.token), 'fetch', url, 'main:refs/remotes/grove/main'], {
      cwd: local,
      env: { GIT_TRACE_CURL: '1', GIT_TRACE_CURL_NO_DATA: '1' },
    });
    assert.equal(fetched.code, 0, fetched.stderr.split('\n').filter((line) => !line.includes('=> Send') && !line.includes('<= Recv')).join('\n'));
    // The negotiation rounds carrying many haves were large enough for git to gzip them.
    assert.match(fetched.stderr, /=> Send header: Content-Encoding: gzip/);
    assert.equal((await revParse(local, 'refs/remotes/grove/main'))[0], (await revParse(source, 'main'))[0]);
    await gitOk(['fsck', '--strict', '--no-dangling'], { cwd: local });
  });

  it('answers 404 for a repository that does not exist, and git clone says "not found"', async () => {
    const url = `${grove.url}/fetchers/no-such-repo.git`;
    const response = await fetch(`${url}/info/refs?service=git-upload-pack`, { headers: { Authorization: `Bearer ${grove.token}` } });
    assert.equal(response.status, 404);
    await response.arrayBuffer();
    const post = await uploadPack(url, v2Request('ls-refs', [], []));
    assert.equal(post.status, 404);
    const clone = await git([...auth(grove.token), 'clone', url, dir('missing')]);
    assert.notEqual(clone.code, 0);
    assert.match(clone.stderr, /not found/);
  });

  for (const version of [2, 0] as const) {
    it(`lists HEAD, branches and tags with peeled entries in git ls-remote (protocol.version=${version})`, async () => {
      const url = await seededRepo(`ls-remote-v${version}`);
      const listed = await git([...auth(grove.token), '-c', `protocol.version=${version}`, 'ls-remote', url]);
      assert.equal(listed.code, 0, listed.stderr);
      const refs = await gitOk(['for-each-ref', '--format=%(objectname)\t%(refname)%(if)%(*objectname)%(then)\n%(*objectname)\t%(refname)^{}%(end)', 'refs/heads', 'refs/tags'], { cwd: source });
      const expected = `${(await revParse(source, 'HEAD'))[0]}\tHEAD\n${refs}`;
      assert.equal(listed.stdout, expected);
      assert.match(listed.stdout, /\trefs\/tags\/v1\.0\^\{\}\n/);
      assert.match(listed.stdout, /\trefs\/heads\/feature-5\n/);
    });
  }
});
