/** Server administration, the root token's alone: `POST /api/v1/admin/secret-key/rotate`. */
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../http/context.ts';
import { requireAccess } from './principal.ts';
import { errorResponses } from './schemas.ts';

export async function adminRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.post('/admin/secret-key/rotate', {
    schema: {
      tags: ['admin'],
      summary: 'Re-seal every stored secret under a new server key (root only)',
      description:
        'With the generated key file (<data>/secret.key), a new key is made, every secret is re-sealed under it, and the old key is dropped. ' +
        'With GROVE_SECRET_KEY, set the new key there and the old one in GROVE_SECRET_KEY_PREVIOUS, restart, then call this to re-seal everything under the new key; the old one can then be removed.',
      response: {
        200: {
          type: 'object',
          required: ['keyId', 'resealed', 'unreadable', 'source'],
          properties: {
            keyId: { type: 'string', description: 'Id of the key that seals from now on (the first 16 hex digits of its SHA-256)' },
            resealed: { type: 'integer', description: 'How many stored secrets were re-sealed' },
            unreadable: { type: 'integer', description: 'Secrets no key of this server opens (sealed under a lost key), left as they are: set them again' },
            source: { type: 'string', enum: ['file', 'env'], description: 'Where the key lives: <data>/secret.key or GROVE_SECRET_KEY' },
          },
        },
        ...errorResponses,
      },
    },
  }, async (request) => {
    requireAccess(request, 'admin', { kind: 'server' });
    return ctx.secrets.rotate(ctx.db, ctx.durability);
  });
}
