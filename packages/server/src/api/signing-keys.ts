/**
 * Org signing keys for offline-signed tokens: `POST/GET /api/v1/orgs/{org}/signing-keys`,
 * `DELETE /api/v1/orgs/{org}/signing-keys/{id}`. Deleting a key invalidates every
 * token it signed on the next request; `DELETE …/{id}/tokens/{jti}` revokes one token.
 */
import { createPublicKey, randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { CLOCK_SKEW_SECONDS, MAX_SIGNED_TOKEN_LIFETIME_SECONDS, normalizePublicJwk } from '../auth/signed-tokens.ts';
import { actorOf } from '../events/types.ts';
import { findOrgByName } from '../db/orgs.ts';
import { deleteSigningKey, findSigningKey, insertSigningKey, listSigningKeys, type SigningKeyRow } from '../db/signing-keys.ts';
import { GroveError, notFound } from '../errors.ts';
import type { AppContext } from '../http/context.ts';
import { principalOf, requireAccess } from './principal.ts';
import { errorResponses } from './schemas.ts';

function signingKeyJson(row: SigningKeyRow, org: string) {
  return { id: row.id, org, name: row.name, publicKey: JSON.parse(row.public_jwk) as Record<string, string>, createdAt: row.created_at };
}

/** Accepts a JWK object or an SPKI PEM string; returns the public JWK or why it is refused. */
export function publicJwkFrom(value: unknown): Record<string, string> | string {
  if (typeof value === 'string') {
    if (!value.includes('-----BEGIN')) return 'publicKey must be a JWK object or a PEM string';
    if (value.includes('PRIVATE KEY')) return 'publicKey is a private key: send only the public key';
    let jwk;
    try {
      const key = createPublicKey(value);
      if (key.asymmetricKeyType !== 'ed25519') return `publicKey must be an Ed25519 key, not ${key.asymmetricKeyType ?? 'unknown'}`;
      jwk = key.export({ format: 'jwk' });
    } catch {
      return 'publicKey is not a valid PEM public key';
    }
    value = jwk;
  }
  const normalized = normalizePublicJwk(value);
  return typeof normalized === 'string' ? normalized : (normalized as Record<string, string>);
}

const signingKeySchema = {
  $id: 'SigningKey',
  type: 'object',
  required: ['id', 'org', 'name', 'publicKey', 'createdAt'],
  properties: {
    id: { type: 'string', description: 'Use as the JWT header kid (optional)' },
    org: { type: 'string' },
    name: { type: 'string' },
    publicKey: { type: 'object', description: 'Ed25519 public key as a JWK', additionalProperties: { type: 'string' } },
    createdAt: { type: 'string', format: 'date-time' },
  },
} as const;

const orgParams = { type: 'object', required: ['org'], properties: { org: { type: 'string' } } } as const;

export async function signingKeyRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.addSchema(signingKeySchema);

  app.post<{ Params: { org: string }; Body: { publicKey: unknown; name: string } }>('/orgs/:org/signing-keys', {
    schema: {
      tags: ['signing-keys'],
      summary: 'Register an Ed25519 public key whose JWTs are accepted as tokens for this org',
      params: orgParams,
      body: {
        type: 'object',
        required: ['publicKey', 'name'],
        additionalProperties: false,
        properties: { publicKey: { type: ['object', 'string'], description: 'JWK (kty OKP, crv Ed25519) or SPKI PEM' }, name: { type: 'string', minLength: 1, maxLength: 100 } },
      },
      response: { 201: { $ref: 'SigningKey#' }, ...errorResponses },
    },
  }, async (request, reply) => {
    const { org } = request.params;
    requireAccess(request, 'admin', { kind: 'org', org });
    // A signing key mints tokens until it is deleted: only a credential that does not expire may add one.
    const principal = principalOf(request);
    if (principal.kind === 'signed') throw new GroveError('forbidden', 'signed tokens cannot register signing keys');
    if (principal.kind === 'key' && principal.expiresAt !== null) {
      throw new GroveError('forbidden', 'only the root token or an admin key that does not expire can register signing keys (a signing key would outlive this key)');
    }
    const orgRow = await findOrgByName(ctx.db, org);
    if (!orgRow) throw notFound(`org ${org}`);
    const jwk = publicJwkFrom(request.body.publicKey);
    if (typeof jwk === 'string') throw new GroveError('invalid_request', jwk);
    const row: SigningKeyRow = {
      id: `sk_${Date.now().toString(36)}${randomBytes(5).toString('hex')}`,
      org_id: orgRow.id,
      name: request.body.name,
      public_jwk: JSON.stringify(jwk),
      created_at: new Date().toISOString(),
    };
    await insertSigningKey(ctx.db, row);
    return reply.code(201).send(signingKeyJson(row, org));
  });

  app.get<{ Params: { org: string } }>('/orgs/:org/signing-keys', {
    schema: {
      tags: ['signing-keys'],
      summary: "List an org's signing keys",
      params: orgParams,
      response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: { $ref: 'SigningKey#' } } } }, ...errorResponses },
    },
  }, async (request) => {
    const { org } = request.params;
    requireAccess(request, 'admin', { kind: 'org', org });
    const orgRow = await findOrgByName(ctx.db, org);
    if (!orgRow) throw notFound(`org ${org}`);
    return { items: (await listSigningKeys(ctx.db, orgRow.id)).map((row) => signingKeyJson(row, org)) };
  });

  app.delete<{ Params: { org: string; id: string } }>('/orgs/:org/signing-keys/:id', {
    schema: {
      tags: ['signing-keys'],
      summary: 'Delete a signing key; tokens it signed stop working at once',
      params: { type: 'object', required: ['org', 'id'], properties: { org: { type: 'string' }, id: { type: 'string' } } },
      response: { 204: { type: 'null' }, ...errorResponses },
    },
  }, async (request, reply) => {
    const { org, id } = request.params;
    requireAccess(request, 'admin', { kind: 'org', org });
    const orgRow = await findOrgByName(ctx.db, org);
    if (!orgRow || !(await deleteSigningKey(ctx.db, orgRow.id, id))) throw notFound(`signing key ${id}`);
    ctx.revokedTokens.forgetSigningKey(id);
    return reply.code(204).send();
  });

  app.delete<{ Params: { org: string; id: string; jti: string }; Querystring: { exp?: number } }>('/orgs/:org/signing-keys/:id/tokens/:jti', {
    schema: {
      tags: ['signing-keys'],
      summary: 'Revoke one signed token by its jti: refused from the next request on, while other tokens of the key keep working',
      params: {
        type: 'object',
        required: ['org', 'id', 'jti'],
        properties: { org: { type: 'string' }, id: { type: 'string' }, jti: { type: 'string', minLength: 1, maxLength: 200 } },
      },
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          exp: { type: 'integer', minimum: 0, description: "The token's exp (epoch seconds), if known: the deny-list entry is kept until then instead of for the longest lifetime a token can have (24 h and the clock tolerance)" },
        },
      },
      response: { 204: { type: 'null' }, ...errorResponses },
    },
  }, async (request, reply) => {
    const { org, id, jti } = request.params;
    requireAccess(request, 'admin', { kind: 'org', org });
    const orgRow = await findOrgByName(ctx.db, org);
    if (!orgRow || !(await findSigningKey(ctx.db, orgRow.id, id))) throw notFound(`signing key ${id}`);
    const now = Date.now();
    // No token with this jti can be valid after the latest exp a token signed now could carry.
    const latest = now + (MAX_SIGNED_TOKEN_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS) * 1000;
    const exp = request.query.exp;
    const until = exp === undefined ? latest : Math.min(latest, (exp + CLOCK_SKEW_SECONDS) * 1000);
    const expiresAt = new Date(until).toISOString();
    if (until > now) {
      await ctx.events.change(
        (trx) => trx
          .insertInto('revoked_tokens')
          .values({ signing_key_id: id, jti, expires_at: expiresAt, revoked_at: new Date(now).toISOString() })
          .onConflict((oc) => oc.columns(['signing_key_id', 'jti']).doUpdateSet({ expires_at: expiresAt }).where('revoked_tokens.expires_at', '<', expiresAt))
          .execute(),
        () => [{ type: 'token.revoked', org, repo: null, actor: actorOf(principalOf(request)), payload: { signingKeyId: id, jti, expiresAt } }],
      );
      ctx.revokedTokens.remember(id, jti, until);
    }
    return reply.code(204).send();
  });
}
