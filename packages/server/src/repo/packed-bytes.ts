/**
 * How many bytes a repository's packs hold: what a full clone answers, roughly (a clone
 * is one pack of the reachable objects). The pack cache uses it to skip responses it
 * could not keep — writing a 4 GiB clone to disk only to discard it costs a 4 GiB write.
 * Remembered per pack directory until its mtime changes (a pack added or removed).
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

const remembered = new Map<string, { mtimeMs: number; bytes: number }>();
const MAX_REMEMBERED = 10_000;

export async function packedBytes(gitDir: string): Promise<number> {
  const dir = path.join(gitDir, 'objects', 'pack');
  const info = await stat(dir).catch(() => null);
  if (info === null) return 0;
  const known = remembered.get(dir);
  if (known !== undefined && known.mtimeMs === info.mtimeMs) return known.bytes;
  let bytes = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name.endsWith('.pack')) bytes += (await stat(path.join(dir, name)).catch(() => null))?.size ?? 0;
  }
  if (remembered.size >= MAX_REMEMBERED) remembered.delete(remembered.keys().next().value!);
  remembered.set(dir, { mtimeMs: info.mtimeMs, bytes });
  return bytes;
}
