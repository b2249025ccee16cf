/** Authentication for every route: turns the Authorization header into a Principal. */
import type { FastifyRequest } from 'fastify';
import { extractToken } from '../auth/credentials.ts';
import { digestsEqual, hashToken } from '../auth/admin-token.ts';
import type { Principal } from '../auth/authorize.ts';
import { GroveError } from '../errors.ts';

export class Authenticator {
  readonly #adminDigest: Buffer;

  constructor(adminDigest: Buffer) {
    this.#adminDigest = adminDigest;
  }

  /** The principal behind the request's credentials, or null when there are none or they are wrong. */
  principalFor(request: FastifyRequest): Principal | null {
    const token = extractToken(request.headers.authorization);
    if (token === null) return null;
    if (digestsEqual(hashToken(token), this.#adminDigest)) return { kind: 'root' };
    return null;
  }

  require(request: FastifyRequest): Principal {
    const principal = this.principalFor(request);
    if (principal === null) {
      throw new GroveError('unauthorized', request.headers.authorization ? 'invalid credentials' : 'authentication required: send a token as Bearer or as the Basic password');
    }
    return principal;
  }
}
