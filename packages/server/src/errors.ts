/**
 * The error catalogue (architecture §8): every error a client can see has a stable
 * code, an HTTP status and a human message. REST answers
 * `{"error": {"code", "message", "details"?}}`; the git routes turn the same errors
 * into what a git client prints.
 */

export const ERROR_CATALOGUE = {
  invalid_request: { status: 400, title: 'The request is malformed or has invalid fields' },
  invalid_name: { status: 400, title: 'A name does not follow the naming rules' },
  unauthorized: { status: 401, title: 'Missing, invalid, expired or revoked credentials' },
  forbidden: { status: 403, title: 'The credentials do not allow this operation' },
  not_found: { status: 404, title: 'No such resource (or not visible to these credentials)' },
  method_not_allowed: { status: 405, title: 'The method is not allowed on this resource' },
  already_exists: { status: 409, title: 'A resource with that name already exists' },
  org_not_empty: { status: 409, title: 'The organization still has repositories' },
  stale_ref: { status: 409, title: 'The ref is not at the expected value (someone else moved it)' },
  merge_conflict: { status: 409, title: 'The merge has conflicts; nothing was changed' },
  idempotency_mismatch: { status: 409, title: 'The Idempotency-Key was used before with a different request' },
  in_use: { status: 409, title: 'The resource is still used by others (details say by whom)' },
  upstream_paused: { status: 409, title: 'The upstream is paused (its credential was rejected, or it failed too often); rotate the credential or resume it' },
  credential_rejected: { status: 424, title: 'The remote refused the credential; nothing was changed' },
  remote_unreachable: { status: 502, title: 'The remote could not be reached or answered with an error; nothing was changed' },
  unprocessable: { status: 422, title: 'The request is well-formed but cannot be applied' },
  too_many_requests: { status: 429, title: 'This credential or org has too many requests running and queued; retry after Retry-After' },
  payload_too_large: { status: 413, title: 'The request body is too large' },
  unsupported_media_type: { status: 415, title: 'The request body has the wrong content type' },
  range_not_satisfiable: { status: 416, title: 'The requested byte range is outside the file' },
  insufficient_storage: { status: 507, title: 'The server is out of disk space; nothing was changed; retry once space is freed' },
  unavailable: { status: 503, title: 'The server is busy or shutting down; retry later' },
  internal: { status: 500, title: 'An unexpected server error' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** The one error type handlers throw; the HTTP layer renders it. */
export class GroveError extends Error {
  override name = 'GroveError';
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.code = code;
    this.status = ERROR_CATALOGUE[code].status;
    this.details = details;
  }

  toJSON(): { error: { code: ErrorCode; message: string; details?: Record<string, unknown> } } {
    return { error: { code: this.code, message: this.message, ...(this.details ? { details: { ...this.details } } : {}) } };
  }
}

export function notFound(what: string): GroveError {
  return new GroveError('not_found', `${what} not found`);
}
