/** Helpers for the read API tests: raw GETs (bytes and headers as sent) and pushing a work repository. */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { TestServer } from './server.ts';
import { auth, gitOk } from './git.ts';

export interface RawResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
  readonly text: string;
  readonly json: any;
}

/** GET `/api/v1/repos/{org}/{repo}/{rest}` with the admin token (or `token`, or none with null). */
export async function read(grove: TestServer, repoPath: string, rest: string, options: { headers?: Record<string, string>; token?: string | null } = {}): Promise<RawResponse> {
  const headers: Record<string, string> = { ...options.headers };
  const token = options.token === undefined ? grove.token : options.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${grove.url}/api/v1/repos/${repoPath}/${rest}`, { headers });
  const body = Buffer.from(await response.arrayBuffer());
  const text = body.toString('utf8');
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, body, text, json };
}

/** A GET whose path is sent exactly as given (fetch would normalize `..` and `.`). */
export function rawGet(grove: TestServer, path: string): Promise<{ status: number; json: any }> {
  const { hostname, port } = new URL(grove.url);
  return new Promise((resolve, reject) => {
    const request = http.request({ host: hostname, port, path, method: 'GET', headers: { authorization: `Bearer ${grove.token}` } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = text;
        }
        resolve({ status: response.statusCode ?? 0, json });
      });
    });
    request.on('error', reject);
    request.end();
  });
}

export function assertCatalogueError(response: { status: number; json: any }, status: number, code: string): void {
  assert.equal(response.status, status, JSON.stringify(response.json));
  assert.equal(response.json?.error?.code, code, JSON.stringify(response.json));
}

/** Pushes branches and tags of a work repository to a Grove repository. */
export async function pushAll(grove: TestServer, cloneUrl: string, dir: string, refspecs: readonly string[] = ['--all']): Promise<void> {
  await gitOk([...auth(grove.token), 'push', '-q', cloneUrl, ...refspecs], { cwd: dir });
  if (refspecs.includes('--all')) await gitOk([...auth(grove.token), 'push', '-q', '--tags', cloneUrl], { cwd: dir });
}

export async function revParse(dir: string, rev: string): Promise<string> {
  return (await gitOk(['rev-parse', rev], { cwd: dir })).trim();
}
