/**
 * A one-object pack of a big blob from its chunk frames, with its index: how an evicted
 * blob goes back into git for a moment (the base of a thin push). The pack is written
 * under a temporary name, named by its checksum as git names packs, then indexed by
 * `git index-pack` (which inflates and hashes it: a damaged store cannot slip in).
 */
import { createHash } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { GitRunner } from '../repo/git-command.ts';
import { bigBlobPackEntry } from './pack-entry.ts';
import type { RawFrame } from './reader.ts';

export async function writeBlobPack(git: GitRunner, gitDir: string, env: Readonly<Record<string, string>>, size: number, frames: AsyncIterable<RawFrame>, packDir: string): Promise<string> {
  const temporary = path.join(packDir, `tmp_grove_${process.pid}_${Date.now()}.pack`);
  const file = await open(temporary, 'wx');
  let packFile: string | null = null;
  try {
    const sha1 = createHash('sha1');
    const header = Buffer.alloc(12);
    header.write('PACK', 0, 'latin1');
    header.writeUInt32BE(2, 4);
    header.writeUInt32BE(1, 8);
    sha1.update(header);
    await file.write(header);
    for await (const piece of bigBlobPackEntry(size, frames)) {
      sha1.update(piece);
      await file.write(piece);
    }
    const digest = sha1.digest();
    await file.write(digest);
    await file.sync();
    await file.close();
    packFile = path.join(packDir, `pack-${digest.toString('hex')}.pack`);
    await rename(temporary, packFile);
    await git.check(['index-pack', packFile], { gitDir, env });
    return packFile;
  } catch (error) {
    await file.close().catch(() => undefined);
    await rm(temporary, { force: true });
    if (packFile !== null) await rm(packFile, { force: true });
    throw error;
  }
}
