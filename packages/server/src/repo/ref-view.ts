/**
 * Each repository's refs, read once and kept in memory until Grove itself moves a
 * ref (every ref change goes through RefTransaction). A committed transaction that only
 * moves branches or deletes refs is applied to the view in place (no re-read: branches
 * need no peeling); anything else invalidates it. Reads that race a change are not
 * cached, so a reader never keeps a stale view.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { GitRunner } from './git-command.ts';
import { isZeroOid } from '../git/oid.ts';
import { HIDDEN_REF_PREFIX, type RefEntry, type RefSnapshot } from './ref-snapshot.ts';

interface Entry {
  generation: number;
  snapshot: Promise<RefSnapshot> | null;
  /** The snapshot once read (null while reading or after an invalidation). */
  value: RefSnapshot | null;
}

/** A committed change to one ref (zeros for a deletion). */
export interface RefChange {
  readonly ref: string;
  readonly newOid: string;
}

/** Orders ref names by their UTF-8 bytes (for-each-ref's order) without encoding the ASCII ones. Pure. */
export function compareRefNames(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Below 0x80 code units and bytes agree; past it (surrogate pairs and all), compare the encodings.
    if (x >= 0x80 || y >= 0x80) return Buffer.compare(Buffer.from(a), Buffer.from(b));
    return x - y;
  }
  return a.length - b.length;
}

/**
 * The snapshot after `changes`, or null when a change cannot be applied without reading
 * (a ref outside refs/heads/ being written may be a tag that needs peeling). Pure.
 */
export function applyChanges(snapshot: RefSnapshot, changes: readonly RefChange[]): RefSnapshot | null {
  const hidden = (ref: string) => ref.startsWith(HIDDEN_REF_PREFIX);
  if (changes.some((c) => !isZeroOid(c.newOid) && !c.ref.startsWith('refs/heads/') && !hidden(c.ref))) return null;
  const byName = new Map(snapshot.refs.map((r) => [r.name, r]));
  const hiddenByName = new Map(snapshot.hidden.map((r) => [r.name, r]));
  const digest = createHash('sha1').update(snapshot.digest);
  for (const change of changes) {
    digest.update(`\0${change.ref} ${change.newOid}`);
    const target = hidden(change.ref) ? hiddenByName : byName;
    if (isZeroOid(change.newOid)) target.delete(change.ref);
    else target.set(change.ref, { name: change.ref, oid: change.newOid, peeled: null });
  }
  // Byte order, as for-each-ref sorts.
  const sorted = (entries: Map<string, RefEntry>) => [...entries.values()].sort((a, b) => compareRefNames(a.name, b.name));
  return { head: snapshot.head, refs: sorted(byName), hidden: sorted(hiddenByName), digest: digest.digest('hex') };
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
      entry = { generation: 0, snapshot: null, value: null };
      this.#entries.set(gitDir, entry);
    }
    if (entry.snapshot !== null) return entry.snapshot;
    const generation = entry.generation;
    const pending = readSnapshot(this.#git, gitDir);
    entry.snapshot = pending;
    pending.then(
      (value) => {
        if (entry.generation !== generation) {
          if (entry.snapshot === pending) entry.snapshot = null;
        } else if (entry.snapshot === pending) entry.value = value;
      },
      () => {
        if (entry.snapshot === pending) entry.snapshot = null;
      },
    );
    return pending;
  }

  /** Forgets the view: the next read reads the refs again. */
  invalidate(gitDir: string): void {
    const entry = this.#entries.get(gitDir);
    if (entry === undefined) return;
    entry.generation++;
    entry.snapshot = null;
    entry.value = null;
  }

  /** Called after a ref transaction committed `changes`. */
  applied(gitDir: string, changes: readonly RefChange[]): void {
    const entry = this.#entries.get(gitDir);
    if (entry === undefined) return;
    const next = entry.value === null ? null : applyChanges(entry.value, changes);
    entry.generation++; // a read in flight may predate the change: it is not kept
    entry.value = next;
    entry.snapshot = next === null ? null : Promise.resolve(next);
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
  const hidden: RefEntry[] = [];
  const tagsOfTags: number[] = [];
  for (const line of listing.toString('utf8').split('\n')) {
    if (line === '') continue;
    const [oid, name, peeledType, peeled] = line.split(' ') as [string, string, string, string];
    if (name.startsWith(HIDDEN_REF_PREFIX)) {
      hidden.push({ name, oid, peeled: null });
      continue;
    }
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
  return { head: match ? { target: match[1]! } : null, refs, hidden, digest };
}
