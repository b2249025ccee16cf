/**
 * A push's pack into its quarantine: `git index-pack --stdin --fix-thin --strict`, fed
 * from the request body with its size bounded.
 *
 * Repositories whose big blobs were evicted to the chunk store (docs/large-files.md) lack
 * objects their refs reach, so:
 * - index-pack runs with `--fsck-objects`, not `--strict`: `--strict` also demands every
 *   object a new tree names ("did not receive expected object" for a README-only push);
 *   connectivity is the pipeline's next step, which knows about the store.
 * - a stock client changing a 50–512 MiB file sends a delta against the version Grove
 *   evicted (a thin pack), which index-pack cannot resolve ("pack has 1 unresolved delta").
 *   The pack is spooled into the quarantine as it is read (up to SPOOL_MAX_BYTES); on that
 *   failure the missing bases that are big blobs of this repository are written into the
 *   quarantine as one-object packs from their chunks, and index-pack runs again from the
 *   spool. A base of any other repository is never written: the push fails as unresolved.
 */
import { createReadStream } from 'node:fs';
import { open, readdir, rm, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { refDeltaBases } from '../git/pack-entries.ts';
import { exitCode, type GitRunner } from './git-command.ts';
import type { Quarantine } from './quarantine.ts';
import type { ReceivePackRequest } from '../git/receive-pack-request.ts';

const PACK_HEADER_BYTES = 12;
/** The largest pack kept for a retry: thin packs against an evicted base are small (2.7 MB for a 1% change of 256 MiB). */
const SPOOL_MAX_BYTES = 256 * 1024 ** 2;

/** The pack could not be read; every non-delete command fails with "unpacker error". */
export class UnpackError extends Error {
  override name = 'UnpackError';
}

/** What a push needs to know of big blobs git no longer holds. */
export interface EvictedBlobs {
  /** Whether the chunk store holds this big blob for the repository. */
  holds(oid: string): boolean;
  /** Writes a one-object pack (and its index) of the blob into `packDir`. */
  writePack(oid: string, packDir: string): Promise<void>;
}

export interface PackIntakeInput {
  readonly gitDir: string;
  readonly request: ReceivePackRequest;
  readonly pack: AsyncIterable<Buffer>;
  readonly progress: (text: string) => void;
  readonly onReceived?: () => void;
  readonly signal: AbortSignal;
  readonly limits: { readonly maxPackBytes: number };
  readonly evicted?: EvictedBlobs | null;
}

export interface PackIntake {
  /** Bytes of the pack as received. */
  readonly bytes: number;
  /** Evicted blobs written back into the quarantine as thin-pack bases (they leave git again at the next eviction). */
  readonly materialized: readonly string[];
}

/** Streams the pack into the quarantine. */
export async function receivePack(git: GitRunner, input: PackIntakeInput, quarantine: Quarantine): Promise<PackIntake> {
  const iterator = input.pack[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  while (head.length < PACK_HEADER_BYTES) {
    const next = await iterator.next();
    if (next.done) throw new UnpackError(head.length === 0 ? 'eof before pack header was fully read' : 'truncated pack header');
    head = Buffer.concat([head, next.value]);
  }
  if (head.toString('latin1', 0, 4) !== 'PACK') throw new UnpackError('protocol error (pack signature mismatch detected)');
  const version = head.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw new UnpackError(`protocol error (pack version ${version} unsupported)`);
  const objectCount = head.readUInt32BE(8);
  let total = head.length;
  const maxBytes = input.limits.maxPackBytes;
  const received = () => input.onReceived?.();
  const evicted = input.evicted ?? null;
  // Only where a retry may be needed: a repository that lacks evicted blobs.
  const spoolFile = path.join(quarantine.dir, 'incoming.pack');
  let spool: FileHandle | null = evicted !== null ? await open(spoolFile, 'w') : null;
  let spooled = true;
  const counted = async function* (): AsyncGenerator<Buffer> {
    yield head;
    if (spool !== null) await spool.write(head);
    for (;;) {
      const next = await iterator.next();
      if (next.done) {
        received(); // the whole body is in: the client now waits for Grove
        return;
      }
      total += next.value.length;
      if (total > maxBytes) throw new UnpackError(`pack exceeds the maximum size of ${maxBytes} bytes`);
      if (spool !== null) {
        if (total > SPOOL_MAX_BYTES) {
          await spool.close();
          spool = null;
          spooled = false;
        } else {
          await spool.write(next.value);
        }
      }
      yield next.value;
    }
  };
  try {
    if (objectCount === 0) {
      // The empty pack git sends when every new tip already exists: nothing to index.
      for await (const _ of counted()) void _;
      if (total !== PACK_HEADER_BYTES + 20) throw new UnpackError('malformed empty pack');
      return { bytes: total, materialized: [] };
    }
    input.progress(`grove: receiving ${objectCount} object${objectCount === 1 ? '' : 's'}\n`);
    const args = await indexPackArgs(input, quarantine, evicted !== null);
    try {
      await indexPack(git, args, input, quarantine, Readable.from(counted()));
      return { bytes: total, materialized: [] };
    } catch (error) {
      if (!(error instanceof UnpackError) || evicted === null || !/unresolved delta/.test(error.message) || !spooled) throw error;
      await spool?.close();
      spool = null;
      const bases = (await refDeltaBases(spoolFile)).filter((oid) => evicted.holds(oid));
      if (bases.length === 0) throw error;
      // index-pack's leftovers go; the bases go where the quarantine's objects are read from.
      const packDir = path.join(quarantine.dir, 'pack');
      for (const name of await readdir(packDir).catch(() => [] as string[])) if (name.startsWith('tmp_')) await rm(path.join(packDir, name), { force: true });
      input.progress(`grove: resolving deltas against ${bases.length} big file${bases.length === 1 ? '' : 's'} kept in the chunk store\n`);
      for (const oid of bases) await evicted.writePack(oid, packDir);
      await indexPack(git, args, input, quarantine, createReadStream(spoolFile));
      return { bytes: total, materialized: bases };
    }
  } finally {
    await spool?.close();
    await rm(spoolFile, { force: true });
  }
}

async function indexPackArgs(input: PackIntakeInput, quarantine: Quarantine, lacksObjects: boolean): Promise<string[]> {
  // A shallow client's pack stops at its shallow commits: tell index-pack (as receive-pack does),
  // and let the connectivity check decide whether the push would add shallow roots.
  const shallowArgs: string[] = [];
  if (input.request.shallow.length > 0) {
    const shallowFile = path.join(quarantine.dir, 'shallow');
    await writeFile(shallowFile, `${input.request.shallow.join('\n')}\n`);
    shallowArgs.push('--shallow-file', shallowFile);
  }
  const check = lacksObjects ? '--fsck-objects' : '--strict';
  return [...shallowArgs, 'index-pack', '--stdin', '--fix-thin', check, `--keep=grove push ${process.pid}`, `--max-input-size=${input.limits.maxPackBytes}`];
}

async function indexPack(git: GitRunner, args: readonly string[], input: PackIntakeInput, quarantine: Quarantine, pack: Readable): Promise<void> {
  const child = await git.spawn(args, { gitDir: input.gitDir, env: quarantine.env, signal: input.signal });
  const stderr: Buffer[] = [];
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  child.stdout.resume();
  const exited = exitCode(child);
  try {
    await pipeline(pack, child.stdin);
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    if (error instanceof UnpackError) throw error;
    if (input.signal.aborted) throw error;
    // index-pack closed its stdin early: it found the pack bad; its stderr says why.
  }
  const code = await exited;
  if (code !== 0) {
    const message = Buffer.concat(stderr).toString('utf8').trim().split('\n').filter(Boolean);
    const reason = message.find((line) => line.startsWith('fatal:') || line.startsWith('error:')) ?? message.pop() ?? 'index-pack failed';
    throw new UnpackError(reason.replace(/^(fatal|error):\s*/, ''));
  }
}
