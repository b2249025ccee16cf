/**
 * Lazy fetches of evicted big blobs (docs/large-files.md, "Partial clones"): a partial
 * clone's client fetches a blob it skipped by naming it, `want <oid>` in a v2 `fetch`.
 * git upload-pack refuses a want it lacks ("not our ref"), so such wants — blobs this
 * repository holds in the chunk store and git does not — are taken out of the request
 * and handed to the pack-objects hook, or, when nothing else is wanted, answered here
 * with a pack of those blobs alone.
 *
 * The v2 response, when the client sent `done` (a lazy fetch does):
 *     PKT-LINE("packfile\n") *PKT-LINE(%x01 pack-bytes) flush-pkt
 * without `done`, an `acknowledgments` section (NAK, ready) and a delim come first.
 */
import { createHash } from 'node:crypto';
import { DELIM_PKT, FLUSH_PKT, pktLine } from '../git/pkt-line.ts';
import { SIDEBAND_DATA, SIDEBAND_PROGRESS, sidebandPackets } from '../git/sideband.ts';
import type { V2Request } from '../git/v2-request.ts';
import { bigBlobPackEntry } from './pack-entry.ts';
import type { RawFrame } from './reader.ts';
import type { GitRunner } from '../repo/git-command.ts';

/** The oids a v2 fetch wants by `want <oid>` (pure). */
export function wantedOids(request: V2Request): string[] {
  return request.args.filter((arg) => /^want [0-9a-f]{40}$/.test(arg)).map((arg) => arg.slice('want '.length));
}

/** The request without wants of `taken` (pure). */
export function withoutWants(request: V2Request, taken: ReadonlySet<string>): V2Request {
  return { ...request, args: request.args.filter((arg) => !(arg.startsWith('want ') && taken.has(arg.slice('want '.length)))) };
}

/** Whether the request still wants anything of git (pure): a want, or a want-ref. */
export function wantsAnything(request: V2Request): boolean {
  return request.args.some((arg) => arg.startsWith('want ') || arg.startsWith('want-ref '));
}

export interface BlobSource {
  readonly oid: string;
  readonly size: number;
  readonly frames: () => AsyncIterable<RawFrame>;
}

/** The whole v2 fetch response for a pack of `blobs` only. */
export async function* blobOnlyFetchResponse(request: V2Request, blobs: readonly BlobSource[], progress: readonly string[] = []): AsyncGenerator<Buffer> {
  if (!request.args.includes('done')) yield Buffer.concat([pktLine('acknowledgments\n'), pktLine('NAK\n'), pktLine('ready\n'), DELIM_PKT]);
  yield pktLine('packfile\n');
  for (const line of progress) yield Buffer.concat(sidebandPackets(SIDEBAND_PROGRESS, Buffer.from(`${line}\n`)));
  const sha1 = createHash('sha1');
  const send = (bytes: Buffer): Buffer => {
    sha1.update(bytes);
    return Buffer.concat(sidebandPackets(SIDEBAND_DATA, bytes));
  };
  const header = Buffer.alloc(12);
  header.write('PACK', 0, 'latin1');
  header.writeUInt32BE(2, 4);
  header.writeUInt32BE(blobs.length, 8);
  yield send(header);
  for (const blob of blobs) {
    for await (const piece of bigBlobPackEntry(blob.size, blob.frames())) yield send(piece);
  }
  yield Buffer.concat([...sidebandPackets(SIDEBAND_DATA, sha1.digest()), FLUSH_PKT]);
}

/**
 * Which of `oids` are big blobs this repository holds in the chunk store (`isHeld`) and git
 * lacks (evicted): one cat-file for the candidates, none when no want is a held blob.
 */
export async function evictedAmong(git: GitRunner, gitDir: string, oids: readonly string[], isHeld: (oid: string) => boolean): Promise<string[]> {
  const candidates = oids.filter(isHeld);
  if (candidates.length === 0) return [];
  const out = (await git.check(['cat-file', '--batch-check=%(objectname) %(objecttype)'], { gitDir, input: `${candidates.join('\n')}\n` })).toString('utf8');
  return out.split('\n').filter((line) => line.endsWith(' missing')).map((line) => line.split(' ')[0]!);
}
