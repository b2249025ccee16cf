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

  async request<T>(method: string, path: string, options: { body?: unknown; query?: Query } = {}): Promise<T> {
    const url = new URL(`${this.#baseUrl}/api/v1${path}`);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = { authorization: `Bearer ${this.#token}`, accept: 'application/json' };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const response = await this.#fetch(url, {
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
    if (!response.ok) {
      const error = (parsed as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | undefined)?.error;
      throw new GroveApiError(response.status, error?.code ?? 'http_error', error?.message ?? `HTTP ${response.status}: ${text.slice(0, 200)}`, error?.details);
    }
    return parsed as T;
  }
}

/** Path segment encoding for names that reach a URL. */
export function seg(value: string): string {
  return encodeURIComponent(value);
}
