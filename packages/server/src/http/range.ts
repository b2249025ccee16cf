/**
 * Conditional and partial GETs (RFC 9110 §13, §14) for content with a strong ETag:
 * `If-None-Match`, `If-Range` and a single `Range: bytes=` range. Pure.
 */

export type RangeDecision =
  | { readonly kind: 'full' }
  | { readonly kind: 'partial'; readonly start: number; readonly end: number }
  | { readonly kind: 'unsatisfiable' };

/**
 * What to send for `Range` against content of `size` bytes. Malformed headers,
 * other units and multiple ranges are ignored (a full answer is always allowed);
 * a well-formed range that starts past the end is unsatisfiable.
 */
export function decideRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined) return { kind: 'full' };
  const match = /^bytes=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header.trim());
  if (match === null) return { kind: 'full' };
  const [, first, last] = match as unknown as [string, string, string];
  if (first === '' && last === '') return { kind: 'full' };
  if (first === '') {
    // suffix: the last N bytes
    const length = Number(last);
    if (length === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - length), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Number(last);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) return { kind: 'full' };
  if (last !== '' && end < start) return { kind: 'full' }; // invalid: ignored
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end: Math.min(end, size - 1) };
}

/** The entity tags of an `If-None-Match` or `If-Range` header ('*' included as is). */
function entityTags(header: string): string[] {
  return header.split(',').map((tag) => tag.trim()).filter((tag) => tag !== '');
}

/** `If-None-Match` (weak comparison, RFC 9110 §13.1.2): true when the client's copy is current. */
export function notModified(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const opaque = etag.replace(/^W\//, '');
  return entityTags(header).some((tag) => tag === '*' || tag.replace(/^W\//, '') === opaque);
}

/** `If-Range` (strong comparison): the range applies only if the client's copy is this one. */
export function rangeApplies(ifRange: string | undefined, etag: string): boolean {
  if (ifRange === undefined) return true;
  const tag = ifRange.trim();
  return !tag.startsWith('W/') && tag === etag;
}
