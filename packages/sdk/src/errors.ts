/** The error every SDK call throws for a non-2xx answer, carrying the catalogue code. */
export class GroveApiError extends Error {
  override name = 'GroveApiError';
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown> | undefined;

  constructor(status: number, code: string, message: string, details?: Record<string, unknown>) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}
