/**
 * A quarantine object directory for incoming objects (git's tmp-objdir): new objects
 * are written under `objects/incoming-*` and become visible only when migrated, so a
 * failed push leaves the repository exactly as it was. Deleting the quarantine is the
 * only cleanup.
 *
 * Migration follows `tmp_objdir_migrate()`: hard-link then unlink (a link never
 * clobbers an existing file), and move pack files in the order .keep → .pack → .rev →
 * .idx so no reader ever sees an index without its pack. The files' contents are already
 * durable — git fsyncs every pack, index and loose object it writes (`core.fsync=committed`)
 * — so only the directories that gained names are fsynced, once each.
 */
import { link, mkdir, mkdtemp, readdir, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { fsyncPath } from './fsync.ts';

export const QUARANTINE_PREFIX = 'incoming-grove-';

const PACK_ORDER = ['.keep', '.pack', '.rev', '.idx'];

function packRank(name: string): number {
  const index = PACK_ORDER.findIndex((ext) => name.endsWith(ext));
  return index === -1 ? PACK_ORDER.length : index;
}

export class Quarantine {
  readonly dir: string;
  readonly #objectsDir: string;

  private constructor(dir: string, objectsDir: string) {
    this.dir = dir;
    this.#objectsDir = objectsDir;
  }

  static async create(gitDir: string): Promise<Quarantine> {
    const objectsDir = path.resolve(gitDir, 'objects');
    const dir = await mkdtemp(path.join(objectsDir, QUARANTINE_PREFIX));
    return new Quarantine(dir, objectsDir);
  }

  /** An object directory made elsewhere (a sync's scratch repository) that migrates into `gitDir`. */
  static of(dir: string, gitDir: string): Quarantine {
    return new Quarantine(dir, path.resolve(gitDir, 'objects'));
  }

  /** The environment under which git reads old objects and writes new ones here. */
  get env(): Record<string, string> {
    return {
      GIT_OBJECT_DIRECTORY: this.dir,
      GIT_ALTERNATE_OBJECT_DIRECTORIES: this.#objectsDir,
      GIT_QUARANTINE_PATH: this.dir,
    };
  }

  /** Moves every object into the repository, durably. Returns the migrated .keep files. */
  async migrate(): Promise<string[]> {
    const keeps: string[] = [];
    const touchedDirs = new Set<string>();
    let createdDir = false;
    const entries = await readdir(this.dir, { withFileTypes: true });
    for (const entry of entries) {
      // info/ holds a scratch repository's alternates: never the repository's own.
      if (!entry.isDirectory() || entry.name === 'info') continue;
      const sourceDir = path.join(this.dir, entry.name);
      const targetDir = path.join(this.#objectsDir, entry.name);
      const files = (await readdir(sourceDir)).sort((a, b) => packRank(a) - packRank(b));
      if (files.length === 0) continue;
      if ((await mkdir(targetDir, { recursive: true })) !== undefined) createdDir = true;
      for (const file of files) {
        const target = path.join(targetDir, file);
        await moveDurably(path.join(sourceDir, file), target);
        if (file.endsWith('.keep')) keeps.push(target);
      }
      touchedDirs.add(targetDir);
    }
    await Promise.all([...touchedDirs].map((dir) => fsyncPath(dir).catch(ignoreMissing)));
    // A new fan-out directory (objects/ab/) is itself a new name in objects/.
    if (createdDir) await fsyncPath(this.#objectsDir);
    return keeps;
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Links `source` in at `target` and drops it; the caller fsyncs the target's directory. */
async function moveDurably(source: string, target: string): Promise<void> {
  try {
    await link(source, target);
  } catch (error) {
    // The same object or pack already exists (content-addressed, so identical), made
    // durable by whoever wrote it — and a concurrent push may already have removed its .keep.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  await unlink(source);
}

/** Removes quarantines left by a crash (startup recovery). */
export async function removeStaleQuarantines(gitDir: string): Promise<number> {
  const objectsDir = path.join(gitDir, 'objects');
  let removed = 0;
  for (const name of await readdir(objectsDir).catch(() => [] as string[])) {
    if (name.startsWith(QUARANTINE_PREFIX)) {
      // A git child of the killed process may still be writing here for a moment (its stdin just
      // closed): retry while the directory refills, until that child has failed and exited.
      await rm(path.join(objectsDir, name), { recursive: true, force: true, maxRetries: 20, retryDelay: 50 });
      removed++;
    }
  }
  return removed;
}

function ignoreMissing(error: unknown): void {
  if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
}

export async function removeKeepFiles(keeps: readonly string[]): Promise<void> {
  await Promise.all(keeps.map((keep) => unlink(keep).catch(() => undefined)));
}
