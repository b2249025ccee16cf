import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import fc from 'fast-check';
import { spliceTar, TarSpliceError, type AppendedTarEntry } from './tar-splice.ts';

const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';
const COMMIT_TIME = 1700000000;
const LONG_SPLIT = `tools/${'x'.repeat(60)}/${'y'.repeat(60)}.sh`; // > 100 bytes, fits prefix + name
const LONG_PAX = `${'z'.repeat(120)}.txt`; // one component over 100 bytes: git writes a pax path
const BIG = 'big/model.bin';

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 't',
  GIT_AUTHOR_EMAIL: 't@example.com',
  GIT_COMMITTER_NAME: 't',
  GIT_COMMITTER_EMAIL: 't@example.com',
  GIT_AUTHOR_DATE: `${COMMIT_TIME} +0000`,
  GIT_COMMITTER_DATE: `${COMMIT_TIME} +0000`,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
};

function git(cwd: string, args: readonly string[]): Buffer {
  return execFileSync('git', args, { cwd, env: GIT_ENV, maxBuffer: 64 * 1024 * 1024 });
}

function tar(cwd: string, args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync('tar', args, { cwd, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Yields `bytes` in pieces whose sizes cycle through `sizes`, so headers and blocks straddle chunks. */
async function* pieces(bytes: Uint8Array, sizes: readonly number[]): AsyncGenerator<Uint8Array> {
  let i = 0;
  for (let offset = 0; offset < bytes.length; i++) {
    const n = sizes[i % sizes.length]!;
    yield bytes.subarray(offset, offset + n);
    offset += n;
  }
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const part of source) parts.push(part);
  return Buffer.concat(parts);
}

function entry(p: string, content: Uint8Array, mode = 0o664, sizes: readonly number[] = [4093]): AppendedTarEntry {
  return { path: p, mode, size: content.length, open: () => pieces(content, sizes) };
}

/** The ustar header block of each plain (name + prefix) entry of a tar, by path, and where its end-of-archive starts. */
function walk(archive: Buffer): { headers: Map<string, Buffer>; end: number } {
  const headers = new Map<string, Buffer>();
  let offset = 0;
  for (; offset + 512 <= archive.length; ) {
    const block = archive.subarray(offset, offset + 512);
    if (block.every((b) => b === 0)) break;
    const field = (start: number, length: number) => block.toString('latin1', start, start + length).replace(/\0.*$/s, '');
    const prefix = field(345, 155);
    headers.set(prefix ? `${prefix}/${field(0, 100)}` : field(0, 100), Buffer.from(block));
    offset += 512 + Math.ceil(parseInt(field(124, 12), 8) / 512) * 512;
  }
  return { headers, end: offset };
}

function withChecksum(block: Buffer): Buffer {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(7, '0')}\0`, 148, 'latin1');
  return block;
}

describe('spliceTar', () => {
  let dir: string;
  let repo: string;
  const bigContent = randomBytes(3 * 1024 * 1024 + 12345);
  const files = new Map<string, Buffer>([
    ['a.txt', Buffer.from('hello\n')],
    ['empty', Buffer.alloc(0)],
    ['d/exactly-512.bin', randomBytes(512)],
    [LONG_SPLIT, Buffer.from('#!/bin/sh\necho hi\n')],
    [LONG_PAX, randomBytes(1000)],
  ]);
  let excluding: Buffer; // git archive without the big file and LONG_SPLIT

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'grove-tar-splice-'));
    repo = path.join(dir, 'repo');
    mkdirSync(repo);
    git(repo, ['init', '-q']);
    for (const [name, content] of [...files, [BIG, bigContent] as const]) {
      mkdirSync(path.dirname(path.join(repo, name)), { recursive: true });
      writeFileSync(path.join(repo, name), content);
    }
    chmodSync(path.join(repo, LONG_SPLIT), 0o755);
    git(repo, ['add', '.']);
    git(repo, ['commit', '-qm', 'files']);
    excluding = git(repo, ['archive', '--format=tar', '--prefix=p/', 'HEAD', '--', '.', `:(exclude)${BIG}`, `:(exclude)${LONG_SPLIT}`]);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('returns git\'s own archive byte for byte when nothing is appended', async () => {
    assert.deepEqual(await collect(spliceTar(pieces(excluding, [1000, 7, 512, 3]), [], COMMIT_TIME)), excluding);
  });

  it('appends entries that GNU tar lists and extracts byte for byte, with no warning', async () => {
    const longAppended = `p/big/${'w'.repeat(140)}.bin`; // 150 bytes, its name part too long to split
    assert.equal(longAppended.length, 150);
    const longContent = randomBytes(777);
    const out = await collect(
      spliceTar(
        pieces(excluding, [4097, 1, 511, 65536]),
        [entry(`p/${BIG}`, bigContent, 0o664, [1, 4095, 65537, 333, 100003]), entry(`p/${LONG_SPLIT}`, files.get(LONG_SPLIT)!, 0o775), entry(longAppended, longContent)],
        COMMIT_TIME,
      ),
    );
    assert.equal(out.length % 10240, 0);
    const archive = path.join(dir, 'out.tar');
    writeFileSync(archive, out);

    const listing = tar(dir, ['-tvf', archive]);
    assert.equal(listing.status, 0, listing.stderr);
    assert.equal(listing.stderr, '');
    const listed = listing.stdout.trim().split('\n');
    const names = listed.map((line) => line.slice(line.indexOf(' p/') + 1));
    for (const name of [...files.keys(), BIG, LONG_SPLIT]) assert.ok(names.includes(`p/${name}`), `${name} is listed`);
    assert.ok(names.includes(longAppended));
    assert.match(listed.find((line) => line.endsWith(`p/${BIG}`))!, new RegExp(`^-rw-rw-r-- root/root +${bigContent.length} `));
    assert.match(listed.find((line) => line.endsWith(`p/${LONG_SPLIT}`))!, /^-rwxrwxr-x root\/root/);

    const target = path.join(dir, 'extracted');
    mkdirSync(target);
    const extraction = tar(target, ['-xf', archive]);
    assert.equal(extraction.status, 0, extraction.stderr);
    assert.equal(extraction.stderr, '');
    for (const [name, content] of [...files, [BIG, bigContent] as const]) assert.equal(sha256(readFileSync(path.join(target, 'p', name))), sha256(content), name);
    assert.equal(sha256(readFileSync(path.join(target, longAppended))), sha256(longContent));
  });

  it('writes the very header git writes for a file it can place in ustar fields', async () => {
    const full = walk(git(repo, ['archive', '--format=tar', '--prefix=p/', 'HEAD'])).headers;
    const appended = walk(await collect(spliceTar(pieces(excluding, [10240]), [entry(`p/${BIG}`, bigContent), entry(`p/${LONG_SPLIT}`, files.get(LONG_SPLIT)!, 0o775)], COMMIT_TIME))).headers;
    for (const name of [BIG, LONG_SPLIT]) assert.deepEqual(appended.get(`p/${name}`), full.get(`p/${name}`), name);
  });

  it('ends on a multiple of 10240 bytes with two zero blocks at least, and its output is the same however git\'s stream is cut', async () => {
    const expected = new Map<string, Buffer>();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 3000 }), { maxLength: 4 }),
        fc.array(fc.integer({ min: 1, max: 1500 }), { minLength: 1, maxLength: 8 }),
        async (sizes, cuts) => {
          const entries = sizes.map((size, i) => entry(`p/extra/${i}.bin`, Buffer.alloc(size, i + 1), 0o664, cuts));
          const out = await collect(spliceTar(pieces(excluding, cuts), entries, COMMIT_TIME));
          assert.equal(out.length % 10240, 0);
          assert.ok(out.subarray(out.length - 1024).every((b) => b === 0));
          const { end } = walk(excluding);
          assert.deepEqual(out.subarray(0, end), excluding.subarray(0, end));
          const key = sizes.join(',');
          const seen = expected.get(key);
          if (seen) assert.deepEqual(out, seen);
          else expected.set(key, out);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('throws TarSpliceError when an entry\'s content is shorter or longer than its size', async () => {
    const content = randomBytes(2000);
    const short: AppendedTarEntry = { path: 'p/short.bin', mode: 0o664, size: 2001, open: () => pieces(content, [600]) };
    await assert.rejects(collect(spliceTar(pieces(excluding, [10240]), [short], COMMIT_TIME)), TarSpliceError);
    const long: AppendedTarEntry = { path: 'p/long.bin', mode: 0o664, size: 1999, open: async () => pieces(content, [600]) };
    await assert.rejects(collect(spliceTar(pieces(excluding, [10240]), [long], COMMIT_TIME)), TarSpliceError);
  });

  it('yields no byte past the declared size of a content that is too long', async () => {
    const content = randomBytes(1000);
    const out: Uint8Array[] = [];
    await assert.rejects(async () => {
      for await (const part of spliceTar(pieces(excluding, [10240]), [{ path: 'p/x', mode: 0o664, size: 999, open: () => pieces(content, [1000]) }], COMMIT_TIME)) out.push(part);
    }, TarSpliceError);
    assert.ok(!out.some((part) => part.length === 1000 && Buffer.from(part).equals(content)));
  });

  it('throws TarSpliceError for a git stream cut anywhere before the end of its end-of-archive', async () => {
    const { end } = walk(excluding);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: end + 1023 }), fc.integer({ min: 1, max: 700 }), async (length, cut) => {
        await assert.rejects(collect(spliceTar(pieces(excluding.subarray(0, length), [cut]), [], COMMIT_TIME)), TarSpliceError);
      }),
      { numRuns: 100 },
    );
  });

  it('throws TarSpliceError for a corrupt header and for data after the end-of-archive', async () => {
    const corrupt = Buffer.from(excluding);
    const offset = corrupt.indexOf('p/a.txt\0');
    corrupt[offset + 10] = corrupt[offset + 10]! ^ 0x01; // inside a header's name: its checksum no longer matches
    await assert.rejects(collect(spliceTar(pieces(corrupt, [10240]), [], COMMIT_TIME)), TarSpliceError);
    const trailing = Buffer.from(excluding);
    trailing[trailing.length - 1] = 1;
    await assert.rejects(collect(spliceTar(pieces(trailing, [10240]), [], COMMIT_TIME)), TarSpliceError);
  });

  it('appends to the archive of an empty tree and of a commit whose tree is empty', async () => {
    const empty = path.join(dir, 'empty');
    mkdirSync(empty);
    git(empty, ['init', '-q']);
    git(empty, ['commit', '-q', '--allow-empty', '-m', 'nothing']);
    const content = randomBytes(5000);
    for (const treeish of [EMPTY_TREE, 'HEAD']) {
      const gitTar = git(empty, ['archive', '--format=tar', '--prefix=p/', treeish]);
      const out = await collect(spliceTar(pieces(gitTar, [333]), [entry('p/only.bin', content)], COMMIT_TIME));
      assert.equal(out.length % 10240, 0);
      const archive = path.join(dir, `empty-${treeish}.tar`);
      writeFileSync(archive, out);
      const listing = tar(dir, ['-tf', archive]);
      assert.equal(listing.stderr, '');
      assert.ok(listing.stdout.split('\n').includes('p/only.bin'), listing.stdout);
      const target = path.join(dir, `empty-${treeish}`);
      mkdirSync(target);
      assert.equal(tar(target, ['-xf', archive]).stderr, '');
      assert.deepEqual(readFileSync(path.join(target, 'p/only.bin')), content);
    }
  });

  it('gzips into an archive that tar -xz extracts', async () => {
    const archive = path.join(dir, 'out.tar.gz');
    await pipeline(Readable.from(spliceTar(pieces(excluding, [8192]), [entry(`p/${BIG}`, bigContent, 0o664, [65536])], COMMIT_TIME)), createGzip(), createWriteStream(archive));
    const target = path.join(dir, 'gz');
    mkdirSync(target);
    const extraction = tar(target, ['-xzf', archive]);
    assert.equal(extraction.status, 0, extraction.stderr);
    assert.equal(extraction.stderr, '');
    assert.equal(sha256(readFileSync(path.join(target, 'p', BIG))), sha256(bigContent));
    assert.deepEqual(readFileSync(path.join(target, 'p', LONG_PAX)), files.get(LONG_PAX));
  });

  it('declares a size of 8 GiB or more in a pax header that tar reads', async () => {
    const size = 8 * 1024 * 1024 * 1024 + 5;
    const huge: AppendedTarEntry = {
      path: 'p/huge.bin',
      mode: 0o664,
      size,
      open: async function* () {
        for (;;) yield Buffer.alloc(1024 * 1024);
      },
    };
    // Only the start: the headers and a MiB of content, then the generator is closed.
    const start: Uint8Array[] = [];
    let length = 0;
    for await (const part of spliceTar(pieces(excluding, [10240]), [huge], COMMIT_TIME)) {
      start.push(part);
      length += part.length;
      if (length > excluding.length + 1024 * 1024) break;
    }
    const archive = path.join(dir, 'huge-start.tar');
    writeFileSync(archive, Buffer.concat(start));
    const listing = tar(dir, ['-tvf', archive]);
    assert.match(listing.stdout, new RegExp(`root/root +${size} .* p/huge\\.bin\\n`));
    assert.match(listing.stderr, /Unexpected EOF/); // the content was cut short on purpose
    assert.ok(Buffer.concat(start).includes(`size=${size}\n`));
  });

  it('passes through a size in base-256 and a size given by a pax header, as other tars write them', async () => {
    const repoTar = git(repo, ['archive', '--format=tar', '--prefix=p/', 'HEAD', '--', 'a.txt']);
    const offset = repoTar.indexOf('p/a.txt\0');
    assert.ok(offset > 0 && offset % 512 === 0);
    const header = Buffer.from(repoTar.subarray(offset, offset + 512));

    const base256 = Buffer.from(header);
    base256.fill(0, 124, 136);
    base256[124] = 0x80;
    base256[135] = files.get('a.txt')!.length;
    withChecksum(base256);

    // An 'x' header whose size= record gives the size; the ustar field says 0.
    const records = Buffer.from('10 size=6\n');
    const extended = Buffer.from(header);
    extended.fill(0, 0, 100).write('paxheader', 0, 'latin1');
    extended.write(`${records.length.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
    extended[156] = 0x78;
    withChecksum(extended);
    const zeroSized = withChecksum(Buffer.from(header).fill(0, 124, 136).fill(0x30, 124, 135));

    for (const variant of [[base256], [extended, Buffer.concat([records, Buffer.alloc(512 - records.length)]), zeroSized]]) {
      const rebuilt = Buffer.concat([repoTar.subarray(0, offset), ...variant, repoTar.subarray(offset + 512)]);
      const out = await collect(spliceTar(pieces(rebuilt, [1]), [entry('p/more.bin', Buffer.from('more'))], COMMIT_TIME));
      assert.deepEqual(out.subarray(0, offset + 1024 + (variant.length - 1) * 512), rebuilt.subarray(0, offset + 1024 + (variant.length - 1) * 512));
      const archive = path.join(dir, 'variant.tar');
      writeFileSync(archive, out);
      const target = path.join(dir, `variant-${variant.length}`);
      mkdirSync(target);
      const extraction = tar(target, ['-xf', archive]);
      assert.equal(extraction.status, 0, extraction.stderr);
      assert.deepEqual(readFileSync(path.join(target, 'p/a.txt')), files.get('a.txt'));
      assert.equal(readFileSync(path.join(target, 'p/more.bin'), 'utf8'), 'more');
    }
  });

  it('refuses a bad entry before writing anything', async () => {
    const make = (over: Partial<AppendedTarEntry>): AppendedTarEntry => ({ path: 'p/x', mode: 0o664, size: 0, open: () => pieces(Buffer.alloc(0), [1]), ...over });
    for (const bad of [make({ path: '' }), make({ path: 'p/a\0b' }), make({ mode: 0o10000 }), make({ size: -1 }), make({ size: 1.5 })]) {
      await assert.rejects(spliceTar(pieces(excluding, [10240]), [bad], COMMIT_TIME).next(), RangeError);
    }
    await assert.rejects(spliceTar(pieces(excluding, [10240]), [], -1).next(), RangeError);
  });
});
