/** The authenticated principal of an API request, and the authorize() gate every route passes. */
import type { FastifyRequest } from 'fastify';
import { authorize, type Action, type Principal, type Resource } from '../auth/authorize.ts';
import { GroveError, notFound } from '../errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export function principalOf(request: FastifyRequest): Principal {
  if (request.principal === null) throw new GroveError('unauthorized', 'authentication required');
  return request.principal;
}

/** Throws the catalogue error for a denial: not_found hides existence, forbidden says why. */
export function requireAccess(request: FastifyRequest, action: Action, resource: Resource): void {
  const decision = authorize(principalOf(request), action, resource);
  if (decision.allowed) return;
  if (decision.status === 'not_found') {
    throw notFound(resource.kind === 'repo' ? `repository ${resource.org}/${resource.repo}` : resource.kind === 'org' ? `org ${resource.org}` : 'resource');
  }
  throw new GroveError('forbidden', decision.reason);
}
