/** Opaque keyset cursors: the last name of a page, so pages stay stable while rows are added. */
import { GroveError } from '../errors.ts';

export function encodeCursor(lastName: string): string {
  return Buffer.from(JSON.stringify({ after: lastName }), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string | undefined): string | null {
  if (cursor === undefined || cursor === '') return null;
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { after?: unknown };
    if (typeof parsed.after === 'string') return parsed.after;
  } catch {
    // fall through
  }
  throw new GroveError('invalid_request', 'cursor is not one this server issued');
}

/** Fetches limit + 1 rows to know whether another page exists. */
export function page<T extends { name: string }, U>(rows: readonly T[], limit: number, toItem: (row: T) => U): { items: U[]; nextCursor: string | null } {
  const items = rows.slice(0, limit);
  const nextCursor = rows.length > limit && items.length > 0 ? encodeCursor(items[items.length - 1]!.name) : null;
  return { items: items.map(toItem), nextCursor };
}
