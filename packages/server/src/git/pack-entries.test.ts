import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { deflateSync } from 'node:zlib';
import { PackFormatError, packEntries, refDeltaBases, type PackEntry } from './pack-entries.ts';

/** A scratch repository driven by the real git binary, isolated from the user's config. */
class ScratchRepo {
  readonly dir: string;

  constructor(prefix: string) {
    this.dir = mkdtempSync(path.join(os.tmpdir(), prefix));
    this.git(['init', '-q', '-b', 'main']);
  }

  git(args: readonly string[], input = ''): string {
    return execFileSync('git', args, { cwd: this.dir, input, env: gitEnv(this.dir), maxBuffer: 64 << 20 }).toString().trim();
  }

  /** Runs pack-objects with `revs` on stdin, writing the pack to `file` rather than through memory. */
  packTo(file: string, options: readonly string[], revs: readonly string[]): string {
    const fd = openSync(file, 'w');
    try {
      execFileSync('git', ['pack-objects', '--stdout', '--revs', '-q', ...options], { cwd: this.dir, input: revs.map((rev) => `${rev}\n`).join(''), env: gitEnv(this.dir), stdio: ['pipe', fd, 'pipe'] });
    } finally {
      closeSync(fd);
    }
    return file;
  }

  write(name: string, content: string | Buffer): void {
    const file = path.join(this.dir, name);
    execFileSync('mkdir', ['-p', path.dirname(file)]);
    writeFileSync(file, content);
  }

  commit(message: string): string {
    this.git(['add', '-A']);
    this.git(['commit', '-q', '-m', message]);
    return this.git(['rev-parse', 'HEAD']);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function gitEnv(home: string): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, GIT_CONFIG_NOSYSTEM: '1', HOME: home, GIT_AUTHOR_NAME: 'A', GIT_AUTHOR_EMAIL: 'a@example.com', GIT_COMMITTER_NAME: 'A', GIT_COMMITTER_EMAIL: 'a@example.com' };
}

/** Text that deltas well against an edited copy of itself but does not compress to nothing. */
function lines(seed: string, count: number): string {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(`${seed} line ${i} ${createHash('sha1').update(`${seed}${i}`).digest('hex')}`);
  return `${out.join('\n')}\n`;
}

function repetitive(count: number): string {
  let out = '';
  for (let i = 0; i < count; i++) out += `big line ${i}\n`;
  return out;
}

interface VerifiedObject {
  readonly oid: string;
  readonly type: string;
  readonly size: number;
  readonly offset: number;
  readonly baseOid?: string;
}

/** `git verify-pack -v` of a pack (indexing it first): `oid type size size-in-pack offset [depth base-oid]`. */
function verifyPack(repo: ScratchRepo, packFile: string): VerifiedObject[] {
  repo.git(['index-pack', packFile]);
  const output = repo.git(['verify-pack', '-v', packFile.replace(/\.pack$/, '.idx')]);
  return output
    .split('\n')
    .filter((line) => /^[0-9a-f]{40} /.test(line))
    .map((line) => {
      const [oid, type, size, , offset, , baseOid] = line.split(/\s+/);
      return { oid: oid!, type: type!, size: Number(size), offset: Number(offset), ...(baseOid === undefined ? {} : { baseOid }) };
    });
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<PackEntry[]> {
  const entries: PackEntry[] = [];
  for await (const entry of packEntries(source)) entries.push(entry);
  return entries;
}

async function* chunked(buffer: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < buffer.length; i += size) yield new Uint8Array(buffer.buffer, buffer.byteOffset + i, Math.min(size, buffer.length - i));
}

async function* whole(buffer: Buffer): AsyncGenerator<Buffer> {
  yield buffer;
}

/** Checks every entry of ours against verify-pack's object at the same offset. */
function assertMatchesVerifyPack(entries: readonly PackEntry[], verified: readonly VerifiedObject[]): void {
  assert.equal(entries.length, verified.length);
  const byOffset = new Map(verified.map((object) => [object.offset, object]));
  for (const entry of entries) {
    const object = byOffset.get(entry.offset);
    assert.ok(object, `verify-pack has no object at offset ${entry.offset}`);
    if (object.baseOid === undefined) {
      assert.equal(entry.type, object.type);
      assert.equal(entry.size, object.size);
    } else if (entry.type === 'ofs-delta') {
      assert.equal(byOffset.get(entry.baseOffset!)?.oid, object.baseOid);
    } else {
      assert.equal(entry.type, 'ref-delta');
      assert.equal(entry.baseOid, object.baseOid);
    }
  }
}

/** A pack of hand-made entries, for headers git would never write. */
function handPack(entries: readonly Buffer[], count = entries.length, version = 2): Buffer {
  const header = Buffer.alloc(12);
  header.write('PACK', 0, 'latin1');
  header.writeUInt32BE(version, 4);
  header.writeUInt32BE(count, 8);
  const body = Buffer.concat([header, ...entries]);
  return Buffer.concat([body, createHash('sha1').update(body).digest()]);
}

function entryHeader(type: number, size: number): Buffer {
  const bytes: number[] = [];
  let c = (type << 4) | (size & 0x0f);
  let rest = Math.floor(size / 16);
  while (rest > 0) {
    bytes.push(c | 0x80);
    c = rest & 0x7f;
    rest = Math.floor(rest / 128);
  }
  bytes.push(c);
  return Buffer.from(bytes);
}

/** git's encode_in_pack_object_header counterpart for ofs-delta distances (write_pack_object). */
function ofsDistance(distance: number): Buffer {
  const bytes = [distance & 0x7f];
  let rest = Math.floor(distance / 128);
  while (rest > 0) {
    rest -= 1;
    bytes.unshift(0x80 | (rest & 0x7f));
    rest = Math.floor(rest / 128);
  }
  return Buffer.from(bytes);
}

describe('packEntries against git', () => {
  let repo: ScratchRepo;
  let ofsPack: Buffer;
  let ofsPackFile: string;
  let refPackFile: string;

  before(() => {
    repo = new ScratchRepo('grove-pack-entries-');
    repo.write('a.txt', lines('a', 400));
    repo.write('dir/b.txt', lines('b', 50));
    repo.write('empty.txt', '');
    // Inflates past the one-call limit, so this entry takes the streaming path; compresses
    // well, so that feeding the pack a byte at a time stays quick.
    repo.write('big.txt', repetitive(80_000));
    repo.commit('one');
    repo.write('a.txt', lines('a', 400).replace('a line 7 ', 'a line seven '));
    repo.write('dir/c.txt', lines('c', 20));
    repo.write('big.txt', `${repetitive(80_000)}tail\n`);
    repo.commit('two');
    repo.git(['tag', '-a', 'v1', '-m', 'release']);
    ofsPackFile = repo.packTo(path.join(repo.dir, 'ofs.pack'), ['--delta-base-offset'], ['main', 'v1']);
    refPackFile = repo.packTo(path.join(repo.dir, 'ref.pack'), [], ['main', 'v1']);
    ofsPack = readFileSync(ofsPackFile);
  });
  after(() => repo.remove());

  it('lists every object verify-pack lists, at the same offsets, with ofs-delta bases at the right objects', async () => {
    const entries = await collect(createReadStream(ofsPackFile));
    assertMatchesVerifyPack(entries, verifyPack(repo, ofsPackFile));
    const types = new Set(entries.map((entry) => entry.type));
    for (const type of ['commit', 'tree', 'blob', 'tag', 'ofs-delta'] as const) assert.ok(types.has(type), `no ${type} entry in the pack`);
    assert.ok(entries.some((entry) => entry.size > 1 << 20), 'no entry over the one-call inflate limit');
  });

  it('names the base oid of each ref-delta of a pack written without delta base offsets', async () => {
    const entries = await collect(createReadStream(refPackFile));
    assertMatchesVerifyPack(entries, verifyPack(repo, refPackFile));
    assert.ok(entries.some((entry) => entry.type === 'ref-delta'));
    assert.ok(entries.every((entry) => entry.type !== 'ofs-delta'));
  });

  it('gives the same entries whether the pack comes in 1-byte chunks, odd chunks or one buffer', async () => {
    const expected = await collect(whole(ofsPack));
    assert.deepEqual(await collect(chunked(ofsPack, 1)), expected);
    assert.deepEqual(await collect(chunked(ofsPack, 7)), expected);
    assert.deepEqual(await collect(chunked(ofsPack, 65_537)), expected);
  });

  it('throws PackFormatError for a pack cut short anywhere', async () => {
    const entries = await collect(whole(ofsPack));
    const cuts = [0, 5, 11, 12, 13, entries[1]!.offset + 1, entries[3]!.offset + 4, Math.floor(ofsPack.length / 2), ofsPack.length - 21, ofsPack.length - 1];
    for (const cut of cuts) {
      await assert.rejects(collect(whole(ofsPack.subarray(0, cut))), PackFormatError, `cut at ${cut}`);
    }
  });

  it('throws PackFormatError for a corrupted zlib stream', async () => {
    const entries = await collect(whole(ofsPack));
    const big = entries.find((entry) => entry.size > 1 << 20)!;
    const small = entries.find((entry) => entry.type === 'blob' && entry.size > 1000)!;
    for (const entry of [small, big]) {
      const corrupt = Buffer.from(ofsPack);
      corrupt[entry.offset + 10] = corrupt[entry.offset + 10]! ^ 0x55;
      await assert.rejects(collect(whole(corrupt)), PackFormatError, `corrupted entry at ${entry.offset}`);
    }
  });

  it('reports the base a thin pack leaves out as a ref-delta base', async () => {
    const thin = new ScratchRepo('grove-pack-thin-');
    try {
      const original = lines('file', 4_000);
      assert.ok(original.length > 200 * 1024);
      thin.write('large.txt', original);
      const old = thin.commit('old');
      const oldBlob = thin.git(['rev-parse', `${old}:large.txt`]);
      thin.write('large.txt', original.replace('file line 1000 ', 'file line one thousand '));
      const next = thin.commit('new');
      const packFile = thin.packTo(path.join(thin.dir, 'thin.pack'), ['--thin', '--delta-base-offset'], [next, `^${old}`]);
      assert.ok(readFileSync(packFile).length < 20 * 1024, 'the pack is not thin');
      const bases = await refDeltaBases(packFile);
      assert.ok(bases.includes(oldBlob), `${oldBlob} not in ${bases.join(', ')}`);
      for (const base of bases) thin.git(['cat-file', '-e', base]);
    } finally {
      thin.remove();
    }
  });
});

describe('packEntries on hand-made packs', () => {
  const blob = (content: Buffer): Buffer => Buffer.concat([entryHeader(3, content.length), deflateSync(content)]);

  it('decodes multi-byte sizes and ofs-delta distances with git\'s add-one-per-continuation rule', async () => {
    const first = blob(randomBytes(300));
    const second = blob(Buffer.alloc(70_000, 'x'));
    const delta = Buffer.from('delta bytes');
    const distance = 12 + first.length + second.length - 12;
    assert.ok(distance >= 128, 'distance needs a continuation byte');
    const ofsDelta = Buffer.concat([entryHeader(6, delta.length), ofsDistance(distance), deflateSync(delta)]);
    const refDelta = Buffer.concat([entryHeader(7, delta.length), Buffer.alloc(20, 0xab), deflateSync(delta)]);
    const entries = await collect(whole(handPack([first, second, ofsDelta, refDelta])));
    assert.deepEqual(entries, [
      { offset: 12, type: 'blob', size: 300 },
      { offset: 12 + first.length, type: 'blob', size: 70_000 },
      { offset: 12 + first.length + second.length, type: 'ofs-delta', size: delta.length, baseOffset: 12 },
      { offset: 12 + first.length + second.length + ofsDelta.length, type: 'ref-delta', size: delta.length, baseOid: 'ab'.repeat(20) },
    ]);
  });

  it('accepts a version 3 header and an empty pack', async () => {
    assert.deepEqual(await collect(whole(handPack([], 0, 3))), []);
  });

  it('rejects a bad signature, an unknown version, the reserved type 5 and type 0', async () => {
    const good = handPack([blob(Buffer.from('hi'))]);
    const badSignature = Buffer.from(good);
    badSignature.write('PACX', 0, 'latin1');
    await assert.rejects(collect(whole(badSignature)), { name: 'PackFormatError', message: /PACK signature/ });
    await assert.rejects(collect(whole(handPack([blob(Buffer.from('hi'))], 1, 4))), { name: 'PackFormatError', message: /version 4/ });
    for (const type of [5, 0]) {
      const entry = Buffer.concat([entryHeader(type, 2), deflateSync(Buffer.from('hi'))]);
      await assert.rejects(collect(whole(handPack([entry]))), { name: 'PackFormatError', message: new RegExp(`object type ${type}`) });
    }
  });

  it('rejects an object count that does not match the entries', async () => {
    const entries = [blob(Buffer.from('one')), blob(Buffer.from('two'))];
    await assert.rejects(collect(whole(handPack(entries, 3))), PackFormatError);
    await assert.rejects(collect(whole(handPack(entries, 1))), { name: 'PackFormatError', message: /junk after the trailer/ });
  });

  it('rejects an entry whose data does not inflate to its header size', async () => {
    const wrong = Buffer.concat([entryHeader(3, 5), deflateSync(Buffer.from('four'))]);
    await assert.rejects(collect(whole(handPack([wrong]))), { name: 'PackFormatError', message: /inflates to/ });
  });

  it('rejects an ofs-delta whose base lies before the first entry', async () => {
    const entry = Buffer.concat([entryHeader(6, 1), ofsDistance(1), deflateSync(Buffer.from('d'))]);
    await assert.rejects(collect(whole(handPack([entry]))), { name: 'PackFormatError', message: /out of bounds/ });
  });
});

/** V8's full collection, which the test runner's command line does not expose. */
function exposeGc(): () => void {
  setFlagsFromString('--expose-gc');
  const gc: unknown = runInNewContext('gc');
  if (typeof gc !== 'function') throw new Error('cannot expose gc');
  return gc as () => void;
}

describe('packEntries memory', () => {
  let repo: ScratchRepo;
  let packFile: string;
  const blobSize = 70 << 20;

  before(() => {
    repo = new ScratchRepo('grove-pack-big-');
    // Written in pieces so that the test process never holds the blob itself.
    const fd = openSync(path.join(repo.dir, 'random.bin'), 'w');
    for (let written = 0; written < blobSize; written += 1 << 20) writeSync(fd, randomBytes(1 << 20));
    closeSync(fd);
    repo.git(['-c', 'core.bigFileThreshold=1m', 'add', 'random.bin']);
    repo.git(['commit', '-q', '-m', 'big']);
    packFile = repo.packTo(path.join(repo.dir, 'big.pack'), [], ['HEAD']);
  });
  after(() => repo.remove());

  it('scans an incompressible 70 MiB entry without holding it in memory', async () => {
    // RSS alone would count up to ~64 MiB of dropped inflate output that V8 has not yet
    // collected, so the sampler collects before each reading: what remains is what the
    // scan holds. (A scanner that kept the entry's compressed chunks grows by ~70 MiB here.)
    const gc = exposeGc();
    // Warm up both inflate paths on a small pack first, so that first-use allocations do not count.
    await collect(whole(handPack([Buffer.concat([entryHeader(3, 2 << 20), deflateSync(Buffer.alloc(2 << 20))])])));
    gc();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sample = (): void => {
      gc();
      peak = Math.max(peak, process.memoryUsage().rss);
    };
    const sampler = setInterval(sample, 20);
    let entries: PackEntry[];
    try {
      entries = await collect(createReadStream(packFile));
    } finally {
      clearInterval(sampler);
    }
    sample();
    assert.ok(entries.some((entry) => entry.type === 'blob' && entry.size === blobSize));
    const growth = peak - baseline;
    assert.ok(growth < 50 << 20, `RSS grew by ${(growth / (1 << 20)).toFixed(1)} MiB while scanning`);
  });
});
