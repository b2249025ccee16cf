/**
 * Ref name validation: `git check-ref-format` rules (git-check-ref-format(1)), plus
 * the stricter rules receive-pack and Grove apply to names that clients push.
 * Pure; returns the reason a name is refused, or null when it is acceptable.
 */

const MAX_REF_NAME_BYTES = 1024;

/** The `git check-ref-format` rules for a full name such as `refs/heads/main`. */
export function checkRefFormat(name: string): string | null {
  if (name.length === 0) return 'empty ref name';
  if (name === '@') return 'a ref cannot be the single character @';
  if (name.endsWith('/')) return 'a ref cannot end with /';
  if (name.endsWith('.')) return 'a ref cannot end with .';
  if (name.startsWith('/')) return 'a ref cannot start with /';
  if (name.includes('..')) return 'a ref cannot contain ..';
  if (name.includes('//')) return 'a ref cannot contain //';
  if (name.includes('@{')) return 'a ref cannot contain @{';
  for (const ch of name) {
    const code = ch.codePointAt(0)!;
    if (code < 0x20 || code === 0x7f) return 'a ref cannot contain control characters';
    if (' ~^:?*[\\'.includes(ch)) return `a ref cannot contain ${JSON.stringify(ch)}`;
  }
  for (const component of name.split('/')) {
    if (component.startsWith('.')) return 'a ref component cannot start with .';
    if (component.endsWith('.lock')) return 'a ref component cannot end with .lock';
  }
  return null;
}

/**
 * What a push or API write may create, update or delete: a valid full name under
 * `refs/`, with at least one level below it, of bounded length, and none of the
 * names that porcelain refuses (`refs/heads/HEAD`, a branch starting with `-`).
 */
export function checkWritableRefName(name: string): string | null {
  if (Buffer.byteLength(name, 'utf8') > MAX_REF_NAME_BYTES) return `ref name longer than ${MAX_REF_NAME_BYTES} bytes`;
  // receive-pack: `refs/` and then at least two components (`refs/foo` is refused).
  if (!name.startsWith('refs/') || !name.slice(5).includes('/')) return 'funny refname';
  const reason = checkRefFormat(name);
  if (reason) return `funny refname (${reason})`;
  if (name === 'refs/heads/HEAD') return 'funny refname (refs/heads/HEAD is reserved)';
  if (name.startsWith('refs/grove/')) return 'refs/grove/ is reserved for Grove (remote sync tracking refs)';
  if (name.startsWith('refs/heads/-') || name.startsWith('refs/tags/-')) return 'funny refname (a branch or tag cannot start with -)';
  return null;
}

/** The branch name of `refs/heads/<name>`, or null for any other ref. */
export function branchName(ref: string): string | null {
  return ref.startsWith('refs/heads/') ? ref.slice('refs/heads/'.length) : null;
}
