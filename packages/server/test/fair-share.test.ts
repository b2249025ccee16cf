/**
 * Fair share: a credential that has its share of git work running and its queue full is
 * refused with a retryable error — on git an error line the client prints, on REST 429 with
 * Retry-After — while other credentials of the same org go on. A push whose pack is held
 * back keeps its slot (the slot is taken once its commands are read).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { pktLine, FLUSH_PKT } from '../src/git/pkt-line.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { auth, commitFile, git, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';

const ZERO = '0'.repeat(40);

/** Starts a push whose commands arrive but whose pack never does: it holds its slot until the socket closes. */
async function heldPush(grove: TestServer, token: string, oid: string): Promise<net.Socket> {
  const socket = net.connect({ port: Number(new URL(grove.url).port), host: '127.0.0.1' });
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.on('error', () => {});
  const commands = Buffer.concat([pktLine(`${ZERO} ${oid} refs/heads/held\0report-status side-band-64k\n`), FLUSH_PKT]);
  socket.write(
    `POST /acme/app.git/git-receive-pack HTTP/1.1\r\nHost: grove\r\nAuthorization: Bearer ${token}\r\n` +
      `Content-Type: application/x-git-receive-pack-request\r\nTransfer-Encoding: chunked\r\n\r\n` +
      `${commands.length.toString(16)}\r\n${commands.toString('latin1')}\r\n`,
  );
  return socket;
}

async function metric(grove: TestServer, pattern: RegExp): Promise<string | undefined> {
  return (await (await fetch(`${grove.url}/metrics`)).text()).split('\n').find((line) => pattern.test(line));
}

describe('fair share under a runaway credential', () => {
  let grove: TestServer;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let url: string;
  let repo: string;
  let tip: string;
  before(async () => {
    grove = await startTestServer({ GROVE_FAIR_SHARE_PER_KEY: '1', GROVE_FAIR_SHARE_QUEUED_PER_KEY: '0' });
    work = await tempDir('grove-fair-');
    url = await grove.createRepo('acme', 'app');
    repo = path.join(work.path, 'work');
    await initWorkRepo(repo);
    tip = await commitFile(repo, 'README.md', '# app\n', 'initial commit');
    await gitOk([...auth(grove.token), 'push', '-q', url, 'HEAD:main'], { cwd: repo });
  });
  after(async () => {
    await grove.close();
    await work[Symbol.asyncDispose]();
  });

  it('refuses a credential over its share with a message git prints and 429 on REST, while another key of the org pushes and reads', async () => {
    const runaway = await grove.sdk.apiKeys.create({ scope: 'write', resources: [{ org: 'acme' }], name: 'runaway' });
    const polite = await grove.sdk.apiKeys.create({ scope: 'write', resources: [{ org: 'acme' }], name: 'polite' });
    const held = await heldPush(grove, runaway.token, tip);
    try {
      await waitFor(async () => (await metric(grove, new RegExp(`^grove_fair_share_requests\\{scope="key",name="${runaway.id}",state="running"\\} 1$`))) !== undefined);

      const refused = await git([...auth(runaway.token), 'push', url, 'HEAD:refs/heads/second'], { cwd: repo });
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /too many concurrent requests for this credential .*retry shortly; no ref was changed/);
      const fetchRefused = await git([...auth(runaway.token), 'clone', url, path.join(work.path, 'refused-clone')]);
      assert.notEqual(fetchRefused.code, 0);
      assert.match(fetchRefused.stderr, /remote error: grove: too many concurrent requests for this credential/);

      const rest = await fetch(`${grove.url}/api/v1/repos/acme/app/branches`, { headers: { authorization: `Bearer ${runaway.token}` } });
      assert.equal(rest.status, 429);
      assert.equal(rest.headers.get('retry-after'), '1');
      assert.equal(((await rest.json()) as { error: { code: string } }).error.code, 'too_many_requests');

      const pushed = await git([...auth(polite.token), 'push', url, 'HEAD:refs/heads/polite'], { cwd: repo });
      assert.equal(pushed.code, 0, pushed.stderr);
      const read = await fetch(`${grove.url}/api/v1/repos/acme/app/branches`, { headers: { authorization: `Bearer ${polite.token}` } });
      assert.equal(read.status, 200);
      assert.match((await metric(grove, new RegExp(`^grove_fair_share_refused_total\\{key="${runaway.id}",org="acme"\\}`))) ?? '', / 3$/);
    } finally {
      held.destroy();
    }
    await waitFor(async () => (await fetch(`${grove.url}/api/v1/repos/acme/app/branches`, { headers: { authorization: `Bearer ${runaway.token}` } })).status === 200);
    const heads = (await gitOk([...auth(grove.token), 'ls-remote', url])).split('\n').filter((line) => /refs\/heads\/(held|second)$/.test(line));
    assert.deepEqual(heads, [], 'neither the held nor the refused push changed a ref');
  });
});

async function waitFor(predicate: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) assert.fail(`not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
