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

export const SHARED_SCHEMAS = [errorSchema, orgSchema, repoSchema] as const;

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
