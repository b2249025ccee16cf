/**
 * mintToken: signs a Grove token offline with an org's Ed25519 private key, so an
 * orchestrator can hand each agent a credential without calling the server. The
 * server accepts it once the matching public key is registered
 * (`grove.signingKeys.create`). WebCrypto only: no dependencies, no network.
 *
 * The token is a JWT (alg EdDSA) with claims {iss: org, scope, resources, iat, exp, jti}.
 */
import type { Grant, Jwk, Scope, WebCryptoKey } from './types.ts';

/** What crypto.subtle takes as a key, in whichever runtime this runs (Node, Deno, Bun, a browser). */
type SubtleKey = Parameters<typeof crypto.subtle.sign>[1];

export const MAX_TOKEN_TTL_SECONDS = 24 * 3600;

export interface MintTokenInput {
  /** Ed25519 private key: a JWK with `d`, a PKCS#8 PEM string, or a CryptoKey. */
  privateKey: Jwk | string | WebCryptoKey;
  scope: Scope;
  /** Every resource must be in one org, the token's issuer. */
  resources: Grant[];
  /** Seconds or "90s" / "30m" / "1h"; at most 24 h. Default 1 h. */
  ttl?: number | string;
  /** The registered signing key's id, sent as `kid` (optional: the server tries each org key). */
  keyId?: string;
  /** Unique token id; default a random UUID. */
  jti?: string;
  /** Override the clock (epoch ms), for tests. */
  now?: number;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

function ttlSeconds(ttl: number | string | undefined): number {
  if (ttl === undefined) return 3600;
  if (typeof ttl === 'number') return ttl;
  const match = /^(\d+)([smhd])?$/.exec(ttl.trim());
  if (!match) throw new TypeError(`ttl ${JSON.stringify(ttl)} must be like "90s", "30m", "1h" or a number of seconds`);
  return Number(match[1]) * UNITS[match[2] ?? 's']!;
}

function base64url(bytes: Uint8Array | string): string {
  const data = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes;
  let binary = '';
  for (const byte of data) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function isCryptoKey(key: Jwk | WebCryptoKey): key is WebCryptoKey {
  return 'algorithm' in key && 'usages' in key;
}

async function importPrivateKey(key: Jwk | string | WebCryptoKey): Promise<SubtleKey> {
  if (typeof key === 'string') {
    const body = key.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, '').replace(/\s+/g, '');
    const der = Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
    return crypto.subtle.importKey('pkcs8', der, { name: 'Ed25519' }, false, ['sign']);
  }
  if (isCryptoKey(key)) return key as unknown as SubtleKey;
  return crypto.subtle.importKey('jwk', key, { name: 'Ed25519' }, false, ['sign']);
}

export async function mintToken(input: MintTokenInput): Promise<string> {
  const issuer = input.resources[0]?.org;
  if (issuer === undefined) throw new TypeError('resources must name at least one org');
  if (input.resources.some((r) => r.org !== issuer)) throw new TypeError('every resource of a signed token must be in the same org');
  const lifetime = ttlSeconds(input.ttl);
  if (!(lifetime > 0 && lifetime <= MAX_TOKEN_TTL_SECONDS)) throw new RangeError('ttl must be between 1 second and 24 hours');
  const now = Math.floor((input.now ?? Date.now()) / 1000);
  const header = { alg: 'EdDSA', typ: 'JWT', ...(input.keyId ? { kid: input.keyId } : {}) };
  const payload = { iss: issuer, scope: input.scope, resources: input.resources, iat: now, exp: now + lifetime, jti: input.jti ?? crypto.randomUUID() };
  const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
  const key = await importPrivateKey(input.privateKey);
  const signature = new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, key, new TextEncoder().encode(signingInput)));
  return `${signingInput}.${base64url(signature)}`;
}
