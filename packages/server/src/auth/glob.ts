/**
 * Branch-name globs for key scopes and ref policies. Pure.
 *
 *   *    any run of characters except '/' (one path segment or part of one)
 *   **   any run of characters including '/' (any depth)
 *   ?    one character except '/'
 *
 * Everything else matches itself: `agent-7/*` matches `agent-7/fix` but not
 * `agent-7/a/b`; `feature/**` matches both.
 */
import { checkRefFormat } from '../git/ref-name.ts';

export function checkBranchGlob(pattern: string): string | null {
  if (typeof pattern !== 'string' || pattern.length === 0) return 'a branch pattern must be a non-empty string';
  if (pattern.length > 255) return 'a branch pattern must be at most 255 characters';
  if (/\*{3,}/.test(pattern)) return 'a branch pattern may not contain ***';
  // With the wildcards replaced by a plain character it must be a valid branch name.
  const reason = checkRefFormat(`refs/heads/${pattern.replace(/\*\*|\*|\?/g, 'x')}`);
  return reason === null ? null : `branch pattern ${JSON.stringify(pattern)} is invalid: ${reason}`;
}

const cache = new Map<string, RegExp>();

export function compileBranchGlob(pattern: string): RegExp {
  let compiled = cache.get(pattern);
  if (compiled) return compiled;
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*' && pattern[i + 1] === '*') {
      source += '.*';
      i++;
    } else if (ch === '*') source += '[^/]*';
    else if (ch === '?') source += '[^/]';
    else source += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  compiled = new RegExp(`^${source}$`, 'u');
  if (cache.size > 10_000) cache.clear();
  cache.set(pattern, compiled);
  return compiled;
}

export function matchesBranchGlob(pattern: string, branch: string): boolean {
  return compileBranchGlob(pattern).test(branch);
}

/**
 * True when every branch `inner` matches is also matched by `outer`; conservative
 * (it may say false for some true cases, never true for a false one). Used so a
 * key can only mint keys narrower than itself.
 */
export function globWithin(inner: string, outer: string): boolean {
  if (inner === outer) return true;
  if (!/[*?]/.test(inner)) return matchesBranchGlob(outer, inner);
  if (outer.endsWith('/**') && !/[*?]/.test(outer.slice(0, -3))) return inner.startsWith(outer.slice(0, -2));
  if (outer === '**') return true;
  return false;
}
