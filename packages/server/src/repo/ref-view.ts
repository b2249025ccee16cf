/**
 * Each repository's refs, read once and kept in memory until Grove itself moves a
 * ref (every ref change goes through RefTransaction, which invalidates). Reads that
 * race an invalidation are not cached, so a reader never keeps a stale view.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { GitRunner } from './git-command.ts';
import type { RefEntry, RefSnapshot } from './ref-snapshot.ts';

interface Entry {
  generation: number;
  snapshot: Promise<RefSnapshot> | null;
}

const MAX_CACHED_REPOS = 10_000;

export class RefView {
  readonly #git: GitRunner;
  readonly #entries = new Map<string, Entry>();

  constructor(git: GitRunner) {
    this.#git = git;
  }

  async read(gitDir: string): Promise<RefSnapshot> {
    let entry = this.#entries.get(gitDir);
    if (entry === undefined) {
      if (this.#entries.size >= MAX_CACHED_REPOS) this.#entries.delete(this.#entries.keys().next().value!);
      entry = { generation: 0, snapshot: null };
      this.#entries.set(gitDir, entry);
    }
    if (entry.snapshot !== null) return entry.snapshot;
    const generation = entry.generation;
    const pending = readSnapshot(this.#git, gitDir);
    entry.snapshot = pending;
    pending.then(
      () => {
        if (entry.generation !== generation && entry.snapshot === pending) entry.snapshot = null;
      },
      () => {
        if (entry.snapshot === pending) entry.snapshot = null;
      },
    );
    return pending;
  }

  /** Called before and after every ref change. */
  invalidate(gitDir: string): void {
    const entry = this.#entries.get(gitDir);
    if (entry === undefined) return;
    entry.generation++;
    entry.snapshot = null;
  }

  forget(gitDir: string): void {
    this.invalidate(gitDir);
    this.#entries.delete(gitDir);
  }
}

export async function readSnapshot(git: GitRunner, gitDir: string): Promise<RefSnapshot> {
  const [head, listing] = await Promise.all([
    readFile(path.join(gitDir, 'HEAD'), 'utf8').catch(() => ''),
    git.check(['for-each-ref', '--format=%(objectname) %(refname) %(*objecttype) %(*objectname)'], { gitDir }),
  ]);
  const refs: RefEntry[] = [];
  const tagsOfTags: number[] = [];
  for (const line of listing.toString('utf8').split('\n')) {
    if (line === '') continue;
    const [oid, name, peeledType, peeled] = line.split(' ') as [string, string, string, string];
    if (peeledType === 'tag') tagsOfTags.push(refs.length);
    refs.push({ name, oid, peeled: peeled ? peeled : null });
  }
  if (tagsOfTags.length > 0) {
    // for-each-ref's %(*objectname) peels one level; ls-refs and v0 show the fully peeled object.
    const out = await git.check(['cat-file', '--batch-check=%(objectname)'], { gitDir, input: tagsOfTags.map((i) => `${refs[i]!.oid}^{}\n`).join('') });
    const peeled = out.toString('utf8').trim().split('\n');
    tagsOfTags.forEach((index, n) => {
      refs[index] = { ...refs[index]!, peeled: peeled[n] ?? null };
    });
  }
  const match = /^ref: (refs\/\S+)\s*$/.exec(head);
  const digest = createHash('sha1').update(head).update('\0').update(listing).digest('hex');
  return { head: match ? { target: match[1]! } : null, refs, digest };
}
