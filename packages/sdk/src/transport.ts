/** The HTTP core shared by every resource: base URL, token, JSON in and out, error mapping. */
import { GroveApiError } from './errors.ts';

export interface GroveOptions {
  /** e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  token: string;
  /** Override for tests or custom agents. */
  fetch?: typeof globalThis.fetch;
}

export type Query = Record<string, string | number | undefined>;

export class Transport {
  readonly #baseUrl: string;
  readonly #token: string;
  readonly #fetch: typeof globalThis.fetch;

  constructor(options: GroveOptions) {
    this.#baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#token = options.token;
    this.#fetch = options.fetch ?? globalThis.fetch;
  }

  async request<T>(method: string, path: string, options: { body?: unknown; query?: Query; headers?: Record<string, string> } = {}): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.#token}`, accept: 'application/json', ...options.headers };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const response = await this.#fetch(this.#url(path, options.query), {
      method,
      headers,
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
    });
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    let parsed: unknown = undefined;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      // not JSON: reported below
    }
    if (!response.ok) throw apiError(response.status, parsed, text);
    return parsed as T;
  }

  /**
   * A request whose answer is not (only) JSON: bytes, a stream, a 304. Answers with a
   * status in `allow` or 2xx come back as the Response, unread; any other status
   * throws the GroveApiError the body describes.
   */
  async raw(
    method: string,
    path: string,
    options: { query?: Query; headers?: Record<string, string>; allow?: readonly number[]; body?: Uint8Array | Blob | ReadableStream<Uint8Array>; signal?: AbortSignal } = {},
  ): Promise<Response> {
    const streamed = options.body instanceof ReadableStream;
    const response = await this.#fetch(this.#url(path, options.query), {
      method,
      headers: { authorization: `Bearer ${this.#token}`, ...options.headers },
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.body !== undefined ? { body: options.body as NonNullable<RequestInit['body']> } : {}),
      // A stream body needs half-duplex (undici's rule for request streams).
      ...(streamed ? ({ duplex: 'half' } as RequestInit) : {}),
    });
    if (response.ok || options.allow?.includes(response.status)) return response;
    const text = await response.text();
    let parsed: unknown = undefined;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      // not JSON
    }
    throw apiError(response.status, parsed, text);
  }

  #url(path: string, query: Query | undefined): URL {
    const url = new URL(`${this.#baseUrl}/api/v1${path}`);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url;
  }
}

function apiError(status: number, parsed: unknown, text: string): GroveApiError {
  const error = (parsed as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | undefined)?.error;
  return new GroveApiError(status, error?.code ?? 'http_error', error?.message ?? `HTTP ${status}: ${text.slice(0, 200)}`, error?.details);
}

/** Path segment encoding for names that reach a URL. */
export function seg(value: string): string {
  return encodeURIComponent(value);
}

/** A repository path or a ref with slashes (`src/app.ts`, `feature/x`): each segment encoded, the slashes kept. */
export function segs(value: string): string {
  return value.split('/').map(encodeURIComponent).join('/');
}
