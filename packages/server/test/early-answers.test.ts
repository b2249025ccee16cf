/**
 * Answers given before a request's body was read (a 413 for a gzip bomb, a 401 or 404 for
 * a big POST) say `Connection: close`, so a keep-alive client opens a new connection for
 * its next request instead of writing it into a socket the server is about to reset.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createGzip } from 'node:zlib';
import { startTestServer, type TestServer } from './helpers/server.ts';

interface Answer {
  readonly status: number;
  readonly connection: string | undefined;
  readonly body: string;
}

/** One request over `agent` (keep-alive, one socket), its answer read to the end. */
function request(agent: http.Agent, url: string, method: string, headers: Record<string, string>, body?: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function gzipBomb(): Promise<Buffer> {
  const gzip = createGzip({ level: 9 });
  const compressed: Buffer[] = [];
  gzip.on('data', (chunk: Buffer) => compressed.push(chunk));
  const zeros = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < 40; i++) gzip.write(zeros);
  await new Promise((resolve) => gzip.end(resolve));
  return Buffer.concat(compressed);
}

describe('early answers to requests whose body was not read', () => {
  let grove: TestServer;
  let repoUrl: string;
  const big = Buffer.alloc(8 * 1024 * 1024, 'x');

  before(async () => {
    grove = await startTestServer({ GROVE_MAX_NEGOTIATION_BYTES: String(1024 * 1024) });
    repoUrl = (await grove.createRepo('early', 'app')).replace(/\.git$/, '');
  });
  after(async () => {
    await grove.close();
  });

  /** Sends `first` on a one-socket keep-alive agent, then a normal request, which must work. */
  async function thenHealthy(first: (agent: http.Agent) => Promise<Answer>): Promise<Answer> {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const answer = await first(agent);
      const next = await request(agent, `${grove.url}/healthz`, 'GET', {});
      assert.equal(next.status, 200, 'the request after the early answer failed');
      return answer;
    } finally {
      agent.destroy();
    }
  }

  it('closes the connection after a 413 for a gzip bomb, and the next request on a new one succeeds', async () => {
    const bomb = await gzipBomb();
    const answer = await thenHealthy((agent) => request(agent, `${repoUrl}.git/git-upload-pack`, 'POST', {
      authorization: `Bearer ${grove.token}`, 'content-type': 'application/x-git-upload-pack-request', 'content-encoding': 'gzip', 'git-protocol': 'version=2',
    }, bomb));
    assert.equal(answer.status, 413, answer.body);
    assert.equal(answer.connection, 'close');
  });

  it('closes the connection after a 401 to an unauthenticated 8 MiB push', async () => {
    const answer = await thenHealthy((agent) => request(agent, `${repoUrl}.git/git-receive-pack`, 'POST', { 'content-type': 'application/x-git-receive-pack-request' }, big));
    assert.equal(answer.status, 401);
    assert.equal(answer.connection, 'close');
  });

  it('closes the connection after a 404 to an 8 MiB push to a repository that does not exist', async () => {
    const answer = await thenHealthy((agent) => request(agent, `${grove.url}/early/missing.git/git-receive-pack`, 'POST', {
      authorization: `Bearer ${grove.token}`, 'content-type': 'application/x-git-receive-pack-request',
    }, big));
    assert.equal(answer.status, 404);
    assert.equal(answer.connection, 'close');
  });

  it('closes the connection after a 413 for an 8 MiB JSON body to the API', async () => {
    const answer = await thenHealthy((agent) => request(agent, `${grove.url}/api/v1/orgs`, 'POST', { authorization: `Bearer ${grove.token}`, 'content-type': 'application/json' }, big));
    assert.equal(answer.status, 413, answer.body);
    assert.equal(answer.connection, 'close');
    assert.equal(JSON.parse(answer.body).error.code, 'payload_too_large');
  });

  it('lets Node\'s fetch send its next request after a 413 for a gzip bomb', async () => {
    const bomb = await gzipBomb();
    const refused = await fetch(`${repoUrl}.git/git-upload-pack`, {
      method: 'POST',
      headers: { authorization: `Bearer ${grove.token}`, 'content-type': 'application/x-git-upload-pack-request', 'content-encoding': 'gzip', 'git-protocol': 'version=2' },
      body: bomb,
    });
    assert.equal(refused.status, 413);
    assert.equal(refused.headers.get('connection'), 'close');
    await refused.arrayBuffer();
    const next = await fetch(`${grove.url}/healthz`);
    assert.equal(next.status, 200);
  });

  it('keeps the connection open after an answer to a request whose small body was read', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const answer = await request(agent, `${grove.url}/early/missing.git/git-upload-pack`, 'POST', {
        authorization: `Bearer ${grove.token}`, 'content-type': 'application/x-git-upload-pack-request',
      }, Buffer.from('0000'));
      assert.equal(answer.status, 404);
      assert.notEqual(answer.connection, 'close');
    } finally {
      agent.destroy();
    }
  });
});
