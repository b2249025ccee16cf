/** Turning user-supplied revisions into object ids, safely. */
import { isOid } from '../git/oid.ts';
import { checkRefFormat } from '../git/ref-name.ts';
import type { GitRunner } from './git-command.ts';

/**
 * Whether a revision string may be handed to git: a full or abbreviated id, or a
 * ref name (`main`, `refs/tags/v1`, `feature/x`). Never an option, a range, a
 * reflog or a path expression.
 */
export function isSafeRevision(rev: string): boolean {
  if (rev.length === 0 || rev.length > 1024 || rev.startsWith('-')) return false;
  if (rev === 'HEAD' || /^[0-9a-f]{4,40}$/.test(rev)) return true;
  return checkRefFormat(rev.startsWith('refs/') ? rev : `refs/heads/${rev}`) === null;
}

/** The commit a revision names, or null when there is none (or the revision is unsafe). */
export async function resolveCommit(git: GitRunner, gitDir: string, rev: string, env?: Record<string, string>): Promise<string | null> {
  if (!isSafeRevision(rev)) return null;
  const result = await git.run(['rev-parse', '--verify', '--quiet', '--end-of-options', `${rev}^{commit}`], { gitDir, ...(env ? { env } : {}) });
  const oid = result.stdout.toString().trim();
  return result.code === 0 && isOid(oid) ? oid : null;
}

/** Whether `ancestor` is reachable from `descendant` (a fast-forward from one to the other). */
export async function isAncestor(git: GitRunner, gitDir: string, ancestor: string, descendant: string, env?: Record<string, string>): Promise<boolean> {
  const result = await git.run(['merge-base', '--is-ancestor', ancestor, descendant], { gitDir, ...(env ? { env } : {}) });
  return result.code === 0;
}

/** The object type of an id, or null when it does not exist. */
export async function objectType(git: GitRunner, gitDir: string, oid: string): Promise<string | null> {
  const result = await git.run(['cat-file', '-t', oid], { gitDir });
  return result.code === 0 ? result.stdout.toString().trim() : null;
}
