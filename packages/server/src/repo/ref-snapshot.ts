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
  /** Every ref under `refs/` that clients see, sorted by name in byte order. */
  readonly refs: readonly RefEntry[];
  /**
   * Grove's own refs under `refs/grove/` (a sync's tracking and backup refs), sorted: never
   * advertised, listed or writable by a client (docs/remote-sync.md). Not peeled.
   */
  readonly hidden: readonly RefEntry[];
  /** Changes whenever any ref or HEAD changes: part of the pack cache's key. */
  readonly digest: string;
}

/** Where Grove keeps refs of its own (remote sync's tracking and backup refs). */
export const HIDDEN_REF_PREFIX = 'refs/grove/';

/** Every ref, the hidden ones too (what a copy of the repository must carry). */
export function allRefs(snapshot: RefSnapshot): RefEntry[] {
  return [...snapshot.refs, ...snapshot.hidden];
}

export function findRef(snapshot: RefSnapshot, name: string): RefEntry | undefined {
  return snapshot.refs.find((ref) => ref.name === name);
}
