/**
 * Org and repo names: `^[a-z0-9][a-z0-9._-]{0,99}$`, not ending in `.git`, and not a
 * word the URL space reserves. Pure; returns the reason a name is refused, or null.
 */
const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,99}$/;

/** First path segments that belong to Grove itself, so no org may take them. */
const RESERVED_ORG_NAMES = new Set(['api', 'healthz', 'metrics', 'readyz']);

export function checkName(kind: 'org' | 'repo' | 'credential' | 'upstream', name: unknown): string | null {
  if (typeof name !== 'string') return `${kind} name must be a string`;
  if (name.length === 0) return `${kind} name must not be empty`;
  if (name.length > 100) return `${kind} name must be at most 100 characters`;
  if (!NAME_PATTERN.test(name)) {
    return `${kind} name ${JSON.stringify(name)} is invalid: use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit`;
  }
  if (name.endsWith('.git')) return `${kind} name must not end in .git`;
  if (kind === 'org' && RESERVED_ORG_NAMES.has(name)) return `org name ${JSON.stringify(name)} is reserved`;
  return null;
}
