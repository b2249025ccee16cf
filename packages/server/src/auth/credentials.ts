/**
 * Extracts the secret from an Authorization header: `Bearer <token>`, or HTTP Basic
 * with the token as the password (the username is ignored; a token given as the
 * username with an empty password is accepted too, as git credential helpers do).
 * Pure.
 */
export function extractToken(header: string | undefined): string | null {
  if (header === undefined) return null;
  const space = header.indexOf(' ');
  if (space === -1) return null;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === 'bearer') return value === '' ? null : value;
  if (scheme !== 'basic') return null;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return null;
  const user = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  if (password !== '') return password;
  return user === '' ? null : user;
}
