/** A repository's refs at one moment, as the wire layer consumes them. */

export interface RefEntry {
  /** Full name, e.g. `refs/heads/main`. */
  readonly name: string;
  readonly oid: string;
  /** For annotated tags: the object the tag finally points at. */
  readonly peeled: string | null;
}

export interface RefSnapshot {
  /** Where HEAD points (`refs/heads/main`), whether or not that branch exists; null if HEAD is detached or unreadable. */
  readonly head: { readonly target: string } | null;
  /** Every ref under `refs/`, sorted by name in byte order. */
  readonly refs: readonly RefEntry[];
  /** Changes whenever any ref or HEAD changes: part of the pack cache's key. */
  readonly digest: string;
}

export function findRef(snapshot: RefSnapshot, name: string): RefEntry | undefined {
  return snapshot.refs.find((ref) => ref.name === name);
}
