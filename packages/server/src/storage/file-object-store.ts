/**
 * An object store in a directory (`GROVE_OBJECT_STORE=file:///srv/grove-packs`): a local disk
 * for a cluster of one or for tests, or a shared volume (NFS, EFS) for nodes that have no S3.
 * It is used only as a content-addressed blob store — files are written to a temporary name,
 * fsynced, renamed into place and the directory fsynced before `put` resolves, and read only by
 * exact name after the database says they exist — which is what close-to-open consistency of
 * a network filesystem supports (scale-out.md §3.2). Git never runs on this directory.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fsyncPath } from '../repo/fsync.ts';
import { ObjectMissingError, type ObjectStore, type StoredObject } from './object-store.ts';

/** Keys are relative paths of safe segments: nothing may climb out of the root. */
export function checkObjectKey(key: string): void {
  if (!/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(key) || key.split('/').some((segment) => segment === '.' || segment === '..')) {
    throw new Error(`invalid object key ${JSON.stringify(key)}`);
  }
}

export class FileObjectStore implements ObjectStore {
  readonly #root: string;
  readonly description: string;

  constructor(root: string) {
    this.#root = path.resolve(root);
    this.description = `file://${this.#root}`;
  }

  #path(key: string): string {
    checkObjectKey(key);
    return path.join(this.#root, ...key.split('/'));
  }

  async put(key: string, file: string): Promise<void> {
    const target = this.#path(key);
    const dir = path.dirname(target);
    await mkdir(dir, { recursive: true });
    const temporary = path.join(dir, `.tmp-${randomBytes(8).toString('hex')}`);
    try {
      await pipeline(createReadStream(file), createWriteStream(temporary, { flags: 'wx' }));
      await fsyncPath(temporary);
      await rename(temporary, target);
      await fsyncPath(dir);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
  }

  async get(key: string, file: string): Promise<void> {
    const source = this.#path(key);
    const handle = await open(source, 'r').catch((error: NodeJS.ErrnoException) => {
      throw error.code === 'ENOENT' ? new ObjectMissingError(key) : error;
    });
    try {
      await pipeline(handle.createReadStream({ autoClose: false }), createWriteStream(file));
    } finally {
      await handle.close();
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.#path(key), { force: true });
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    const names = await readdir(this.#root, { recursive: true, withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [];
      throw error;
    });
    const keys = names
      .filter((entry) => entry.isFile() && !entry.name.startsWith('.tmp-'))
      .map((entry) => path.relative(this.#root, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
      .filter((key) => key.startsWith(prefix))
      .sort();
    for (const key of keys) {
      const info = await stat(path.join(this.#root, key)).catch(() => null);
      if (info !== null) yield { key, size: info.size, modifiedAt: info.mtime };
    }
  }

  async check(): Promise<void> {
    await mkdir(this.#root, { recursive: true });
    await stat(this.#root);
  }

  async close(): Promise<void> {}
}
