/**
 * `uploadpack.packObjectsHook` for repositories whose big blobs are in the chunk store
 * (docs/large-files.md, "Serving evicted blobs"). git upload-pack runs
 * `<hook> git [--shallow-file ''] pack-objects --revs --stdout … [--filter=…]` and feeds it
 *
 *     [--shallow <oid>]…   the client's new shallow boundary
 *     <want>…
 *     --not
 *     <have or edge>…
 *     (empty line)
 *
 * The hook asks `git rev-list --objects --missing=print` (same wants, haves, shallow
 * boundary and filter) which objects of the answer git lacks; each must be a big blob the
 * store holds for this repository (the tenant rule: an oid alone gives no one anything).
 * Then it runs the original pack-objects with `--missing=allow-any` and writes its pack
 * with those blobs appended: the object count in the header raised by their number,
 * pack-objects' trailer replaced by the SHA-1 of the new pack. With nothing to add it is a
 * plain pass-through.
 *
 * git 2.39's `rev-list --stdin` refuses `--not`, so haves are written as `^<oid>`; its
 * `--shallow-file` takes the path as the next argument.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { manifestSize } from './manifest.ts';
import { windowsWarnings } from './windows-clients.ts';
import { bigBlobPackEntry } from './pack-entry.ts';
import type { BigstoreReader } from './reader.ts';

/** What upload-pack writes to pack-objects' stdin. */
export interface PackRequest {
  readonly shallow: readonly string[];
  readonly wants: readonly string[];
  readonly haves: readonly string[];
}

export class SpliceError extends Error {
  override name = 'SpliceError';
}

const OID = /^[0-9a-f]{40}$/;

/** Parses pack-objects' `--revs` input as upload-pack writes it (pure). */
export function parsePackRequest(text: string): PackRequest {
  const shallow: string[] = [];
  const wants: string[] = [];
  const haves: string[] = [];
  let negated = false;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line === '--not') {
      negated = !negated;
    } else if (line.startsWith('--shallow ')) {
      shallow.push(line.slice('--shallow '.length));
    } else if (OID.test(line)) {
      (negated ? haves : wants).push(line);
    } else {
      throw new SpliceError(`unexpected pack-objects input line ${JSON.stringify(line)}`);
    }
  }
  for (const oid of shallow) if (!OID.test(oid)) throw new SpliceError(`bad shallow line ${JSON.stringify(oid)}`);
  return { shallow, wants, haves };
}

/** The smallest `blob:limit` of a filter spec (also inside `combine:`), or null when it sets none (pure). */
export function blobSizeLimit(filter: string | null): number | null {
  if (filter === null) return null;
  const parts = filter.startsWith('combine:') ? filter.slice('combine:'.length).split('+').map((p) => decodeURIComponent(p)) : [filter];
  let limit: number | null = null;
  for (const part of parts) {
    const match = /^blob:limit=(\d+)([kmg]?)$/i.exec(part);
    if (match === null) continue;
    const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[match[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
    const bytes = Number(match[1]) * unit;
    limit = limit === null ? bytes : Math.min(limit, bytes);
  }
  return limit;
}

/**
 * The pack-objects arguments with `--missing=allow-any` (git leaves out what it lacks; the
 * hook adds it): inserted after the subcommand, before anything else of it.
 */
export function withMissingAllowed(args: readonly string[]): string[] {
  const at = args.indexOf('pack-objects');
  if (at < 0) throw new SpliceError('the hook was not given a pack-objects command');
  return [...args.slice(0, at + 1), '--missing=allow-any', ...args.slice(at + 1)];
}

/** A big blob to splice, and its size. */
export interface BlobSize {
  readonly oid: string;
  readonly size: number;
}

export interface SpliceEnvironment {
  readonly reader: BigstoreReader;
  readonly repoId: string;
  /** Blobs the client asked for by id (a partial clone's lazy fetch), already checked against this repository. */
  readonly extraBlobs: readonly string[];
  readonly stdin: Readable;
  readonly stdout: Writable;
  /** Set for a Git for Windows client: told, as progress, of each blob too big for it (windows-clients.ts). */
  readonly warnWindows?: (line: string) => void;
}

/** Runs the hook; resolves with its exit code. `argv` is what upload-pack appended: `git …`. */
export async function runSpliceHook(argv: readonly string[], env: SpliceEnvironment): Promise<number> {
  const [gitBinary, ...args] = argv;
  if (gitBinary === undefined) throw new SpliceError('no command given');
  const input = await readAll(env.stdin);
  const request = parsePackRequest(input.toString('utf8'));
  const filter = args.find((a) => a.startsWith('--filter='))?.slice('--filter='.length) ?? null;
  const { blobs, gitLacksSome } = await blobsToSplice(gitBinary, request, filter, env);
  if (env.warnWindows !== undefined) for (const line of windowsWarnings(blobs)) env.warnWindows(line);
  // A blob git lacks stops pack-objects even when the client's filter leaves it out (git cannot size it).
  const packArgs = gitLacksSome ? withMissingAllowed(args) : args;
  if (blobs.length === 0) return passThrough(gitBinary, packArgs, input);
  return spliceInto(gitBinary, packArgs, input, blobs, env);
}

/** The big blobs of the answer that git lacks, with their sizes; throws for anything else git lacks. */
async function blobsToSplice(git: string, request: PackRequest, filter: string | null, env: SpliceEnvironment): Promise<{ blobs: BlobSize[]; gitLacksSome: boolean }> {
  const chosen = new Map<string, number>();
  const take = (oid: string): boolean => {
    const manifest = env.reader.isLinked(env.repoId, oid) ? env.reader.manifest(oid) : null;
    if (manifest === null) return false;
    chosen.set(oid, manifestSize(manifest));
    return true;
  };
  for (const oid of env.extraBlobs) if (!take(oid)) throw new SpliceError(`object ${oid} is not a big blob of this repository`);
  const listed = () => [...chosen].map(([oid, size]) => ({ oid, size }));
  if (request.wants.length === 0) return { blobs: listed(), gitLacksSome: false };
  const missing = await missingObjects(git, request, filter);
  const limit = blobSizeLimit(filter);
  for (const oid of missing) {
    if (!take(oid)) throw new SpliceError(`object ${oid} is missing from the repository`);
    // git cannot size a blob it lacks, so it keeps it under blob:limit; the filter is applied here.
    if (limit !== null && chosen.get(oid)! >= limit && !env.extraBlobs.includes(oid)) chosen.delete(oid);
  }
  return { blobs: listed(), gitLacksSome: missing.length > 0 };
}

async function missingObjects(git: string, request: PackRequest, filter: string | null): Promise<string[]> {
  let shallowDir: string | null = null;
  try {
    const prefix: string[] = [];
    if (request.shallow.length > 0) {
      shallowDir = await mkdtemp(path.join(tmpdir(), 'grove-splice-'));
      const file = path.join(shallowDir, 'shallow');
      await writeFile(file, request.shallow.map((oid) => `${oid}\n`).join(''));
      prefix.push('--shallow-file', file);
    }
    const args = [...prefix, 'rev-list', '--objects', '--no-object-names', '--missing=print', ...(filter !== null ? [`--filter=${filter}`] : []), '--stdin'];
    const input = [...request.wants, ...request.haves.map((oid) => `^${oid}`)].map((line) => `${line}\n`).join('');
    const child = spawn(git, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.end(input);
    const missing: string[] = [];
    let rest = '';
    const stderr: Buffer[] = [];
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      const lines = (rest + chunk.toString('latin1')).split('\n');
      rest = lines.pop()!;
      for (const line of lines) if (line.startsWith('?')) missing.push(line.slice(1));
    }
    const [code] = (await once(child, 'close')) as [number | null];
    if (code !== 0) throw new SpliceError(`rev-list exited with ${code}: ${Buffer.concat(stderr).toString('utf8').trim().split('\n').pop() ?? ''}`);
    return missing;
  } finally {
    if (shallowDir !== null) await rm(shallowDir, { recursive: true, force: true });
  }
}

/** Nothing to add: pack-objects writes straight to the hook's stdout. */
async function passThrough(git: string, args: readonly string[], input: Buffer): Promise<number> {
  const child = spawn(git, args, { stdio: ['pipe', 'inherit', 'inherit'] });
  child.stdin.end(input);
  const [code] = (await once(child, 'close')) as [number | null];
  return code ?? 1;
}

/** pack-objects' pack with its count raised, its trailer dropped, the blobs appended and a new trailer. */
async function spliceInto(git: string, args: readonly string[], input: Buffer, blobs: readonly BlobSize[], env: SpliceEnvironment): Promise<number> {
  const child = spawn(git, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin.end(input);
  const sha1 = createHash('sha1');
  const emit = async (bytes: Buffer) => {
    sha1.update(bytes);
    await write(env.stdout, bytes);
  };
  let header: Buffer | null = null;
  let pending: Buffer = Buffer.alloc(0);
  for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    if (header === null) {
      if (pending.length < 12) continue;
      header = Buffer.from(pending.subarray(0, 12));
      if (header.toString('latin1', 0, 4) !== 'PACK') throw new SpliceError('pack-objects did not write a pack');
      header.writeUInt32BE(header.readUInt32BE(8) + blobs.length, 8);
      await emit(header);
      pending = pending.subarray(12);
    }
    // The last 20 bytes may be pack-objects' trailer: held back until the end.
    if (pending.length > 20) {
      await emit(pending.subarray(0, pending.length - 20));
      pending = pending.subarray(pending.length - 20);
    }
  }
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) return code ?? 1;
  if (header === null || pending.length !== 20) throw new SpliceError('pack-objects wrote a truncated pack');
  for (const blob of blobs) {
    for await (const piece of bigBlobPackEntry(blob.size, env.reader.rawFrames(blob.oid))) await emit(piece);
  }
  await write(env.stdout, sha1.digest());
  return 0;
}

async function write(sink: Writable, bytes: Buffer): Promise<void> {
  if (!sink.write(bytes)) await once(sink, 'drain');
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) parts.push(chunk);
  return Buffer.concat(parts);
}
