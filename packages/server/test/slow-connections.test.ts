/**
 * Slow and abusive connections: thousands of connections trickling their headers
 * (slowloris) from one address, a body that stops arriving, more connections than the
 * server takes. Real sockets against a real server; the attacker binds 127.0.0.2 so that
 * the per-address limit it hits is not the normal client's (127.0.0.1).
 */
import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { auth, commitFile, git, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';

interface SlowClient {
  readonly socket: net.Socket;
  answer: string;
  closed: boolean;
}

/** Opens a connection from `localAddress` that sends a request line and then one header byte every `everyMs`. */
function trickle(port: number, localAddress: string, everyMs: number): Promise<SlowClient> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    const client: SlowClient = { socket, answer: '', closed: false };
    let timer: NodeJS.Timeout | undefined;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (client.answer += chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      client.closed = true;
      clearInterval(timer);
    });
    socket.once('connect', () => {
      socket.write('GET /healthz HTTP/1.1\r\nHost: grove\r\nX-Slow: ');
      timer = setInterval(() => socket.writable && socket.write('a'), everyMs);
      resolve(client);
    });
    socket.once('error', reject);
  });
}

async function until(what: string, predicate: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await delay(50);
  }
}

describe('slow and abusive connections', () => {
  let grove: TestServer;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let url: string;
  before(async () => {
    grove = await startTestServer({ GROVE_MAX_CONNECTIONS_PER_ADDRESS: '500', GROVE_HEADERS_TIMEOUT_MS: '8000', GROVE_BODY_IDLE_TIMEOUT_MS: '1500' });
    work = await tempDir('grove-slow-');
    url = await grove.createRepo('acme', 'app');
    const repo = path.join(work.path, 'seed');
    await initWorkRepo(repo);
    await commitFile(repo, 'README.md', '# app\n', 'initial commit');
    await gitOk([...auth(grove.token), 'push', '-q', url, 'HEAD:main'], { cwd: repo });
  });
  after(async () => {
    await grove.close();
    await work[Symbol.asyncDispose]();
  });

  it('keeps serving a normal clone while 2,000 connections trickle their headers, refuses those over the per-address limit with 503, and ends the rest at the headers timeout', async () => {
    const port = Number(new URL(grove.url).port);
    const slow: SlowClient[] = [];
    for (let i = 0; i < 2000; i += 100) slow.push(...(await Promise.all(Array.from({ length: 100 }, () => trickle(port, '127.0.0.2', 500)))));
    await until('the connections over the limit to be refused', () => slow.filter((c) => c.closed).length >= 1500, 10_000);
    const refused = slow.filter((c) => c.answer.startsWith('HTTP/1.1 503'));
    assert.equal(refused.length, 1500, 'every connection over the 500 of one address is answered 503');
    assert.match(refused[0]!.answer, /\r\nRetry-After: 1\r\n/);

    // The headers timeout (8 s) leaves room for opening 2,000 sockets and a clone on a slow 2-core CI runner.
    const clone = await git([...auth(grove.token), 'clone', url, path.join(work.path, 'during')]);
    assert.equal(clone.code, 0, clone.stderr);
    assert.ok(slow.filter((c) => !c.closed).length === 500, 'the 500 admitted connections are still trickling during the clone');

    await until('the trickling connections to be ended by the headers timeout', () => slow.every((c) => c.closed), 15_000);
    const metrics = await (await fetch(`${grove.url}/metrics`)).text();
    assert.match(metrics, /^grove_http_connections_refused\{limit="per_address"\} 1500$/m);
  });

  it('ends a request whose body stops arriving after GROVE_BODY_IDLE_TIMEOUT_MS', async () => {
    const port = Number(new URL(grove.url).port);
    const socket = net.connect({ port, host: '127.0.0.1' });
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.on('error', () => {});
    const started = Date.now();
    socket.write(`POST /api/v1/orgs HTTP/1.1\r\nHost: grove\r\nAuthorization: Bearer ${grove.token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name":`);
    await new Promise((resolve) => socket.once('close', resolve));
    const held = Date.now() - started;
    assert.ok(held >= 1400 && held < 5000, `the connection was ended after ${held} ms`);
    assert.equal((await grove.sdk.orgs.list()).items.some((o) => o.name === ''), false);
  });

  it('answers 503 with Retry-After to a connection over GROVE_MAX_CONNECTIONS, and serves again once connections close', async () => {
    const small = await startTestServer({ GROVE_MAX_CONNECTIONS: '4' });
    try {
      const port = Number(new URL(small.url).port);
      const held = await Promise.all(Array.from({ length: 4 }, () => trickle(port, '127.0.0.1', 1000)));
      const over = await fetch(`${small.url}/healthz`);
      assert.equal(over.status, 503);
      assert.equal(over.headers.get('retry-after'), '1');
      for (const client of held) client.socket.destroy();
      await delay(100);
      assert.equal((await fetch(`${small.url}/healthz`)).status, 200);
    } finally {
      await small.close();
    }
  });
});
