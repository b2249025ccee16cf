/** JSON schemas shared by the REST routes; they validate requests and build the OpenAPI document. */

export const errorSchema = {
  $id: 'Error',
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'Stable code from the error catalogue' },
        message: { type: 'string' },
        details: { type: 'object', additionalProperties: true },
      },
    },
  },
} as const;

export const orgSchema = {
  $id: 'Org',
  type: 'object',
  required: ['id', 'name', 'createdAt'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    createdAt: { type: 'string', format: 'date-time' },
  },
} as const;

export const repoSchema = {
  $id: 'Repo',
  type: 'object',
  required: ['id', 'org', 'name', 'defaultBranch', 'description', 'cloneUrl', 'createdAt', 'updatedAt'],
  properties: {
    id: { type: 'string' },
    org: { type: 'string' },
    name: { type: 'string' },
    defaultBranch: { type: 'string' },
    description: { type: 'string' },
    cloneUrl: { type: 'string', description: 'Smart HTTP URL for git clone/fetch/push' },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
    forkOf: { type: ['string', 'null'], description: 'Id of the repository whose objects this one shares (fork or snapshot)' },
    expiresAt: { type: ['string', 'null'], format: 'date-time', description: 'When an ephemeral repository is deleted' },
  },
} as const;

export const eventSchema = {
  $id: 'Event',
  type: 'object',
  description: 'A domain event, as delivered to webhooks (JSON body) and on the SSE stream (data line)',
  required: ['id', 'type', 'time', 'org', 'repo', 'actor', 'payload'],
  properties: {
    id: { type: 'integer', description: 'Monotonic; the SSE id and Last-Event-ID' },
    type: {
      type: 'string',
      enum: ['push', 'branch.created', 'branch.deleted', 'tag.created', 'tag.deleted', 'commit.created', 'merge.completed', 'repo.created', 'repo.deleted', 'key.created', 'key.revoked'],
    },
    time: { type: 'string', format: 'date-time' },
    org: { type: 'string' },
    repo: { type: ['string', 'null'] },
    actor: {
      type: 'object',
      properties: { kind: { type: 'string', enum: ['root', 'key', 'signed', 'system'] }, id: { type: ['string', 'null'] }, name: { type: ['string', 'null'] } },
    },
    payload: {
      type: 'object',
      description:
        'push: {refs: [{ref, before, after, forced}]} (before/after null for create/delete; source "api" for API branch moves); ' +
        'branch.*/tag.*: {name, ref, sha}; commit.created: {branch, sha, parents, message, refs}; merge.completed: {base, head, strategy, sha, refs}; ' +
        'repo.*: {id, from?, snapshot?, expiresAt?, reason?}; key.*: {keyId, name, scope}',
      additionalProperties: true,
    },
  },
} as const;

export const SHARED_SCHEMAS = [errorSchema, orgSchema, repoSchema, eventSchema] as const;

export const errorResponses = {
  400: { $ref: 'Error#' },
  401: { $ref: 'Error#' },
  403: { $ref: 'Error#' },
  404: { $ref: 'Error#' },
  409: { $ref: 'Error#' },
} as const;

export const paginationQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100, description: 'Page size' },
    cursor: { type: 'string', maxLength: 400, description: 'nextCursor from the previous page' },
  },
} as const;

export function pageOf(itemRef: string) {
  return {
    type: 'object',
    required: ['items', 'nextCursor'],
    properties: {
      items: { type: 'array', items: { $ref: itemRef } },
      nextCursor: { type: ['string', 'null'], description: 'Pass as cursor to get the next page; null on the last page' },
    },
  } as const;
}
