/**
 * Races: clients pushing to the same branch from the same base at the same moment.
 * Exactly one wins each round; the others get a normal rejection the client prints
 * (never a lock error, a 500 or a hang); nothing acknowledged is lost. Clients on
 * distinct branches of one repository all succeed. GROVE_RACE_ROUNDS sets the rounds.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { auth, commitFile, git, gitOk, tempDir } from './helpers/git.ts';

const ROUNDS = Number(process.env.GROVE_RACE_ROUNDS ?? 5);
const CLIENTS = 8;

describe('racing pushes', () => {
  let grove: TestServer;
  before(async () => {
    grove = await startTestServer();
  });
  after(async () => {
    await grove.close();
  });

  it(`lets exactly one of ${CLIENTS} pushes from the same base win, ${ROUNDS} rounds in a row`, async () => {
    const url = await grove.createRepo('race', 'same-branch');
    await using work = await tempDir();
    const clients: string[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      const dir = path.join(work.path, `c${i}`);
      await gitOk(['init', '-q', '-b', 'main', dir]);
      clients.push(dir);
    }
    // A common base, fetched by everyone.
    await commitFile(clients[0]!, 'base.txt', 'base\n', 'base');
    await gitOk([...auth(grove.token), 'push', '-q', url, 'main'], { cwd: clients[0]! });
    for (let round = 0; round < ROUNDS; round++) {
      for (const dir of clients) {
        await gitOk([...auth(grove.token), 'fetch', '-q', url, 'main'], { cwd: dir });
        await gitOk(['reset', '-q', '--hard', 'FETCH_HEAD'], { cwd: dir });
      }
      const shas = await Promise.all(clients.map((dir, i) => commitFile(dir, `c${i}.txt`, `round ${round}\n`, `client ${i} round ${round}`)));
      const results = await Promise.all(clients.map((dir) => git([...auth(grove.token), 'push', '--porcelain', url, 'main'], { cwd: dir })));
      const winners = results.map((r, i) => (r.code === 0 ? i : -1)).filter((i) => i >= 0);
      assert.equal(winners.length, 1, `round ${round}: ${winners.length} winners\n${results.map((r) => r.stderr + r.stdout).join('\n---\n')}`);
      for (const [i, result] of results.entries()) {
        if (i === winners[0]) continue;
        assert.match(result.stdout + result.stderr, /fetch first|stale old value|non-fast-forward/, `round ${round}, client ${i}:\n${result.stdout}${result.stderr}`);
        assert.doesNotMatch(result.stdout + result.stderr, /cannot lock|\.lock|HTTP 5\d\d|internal error/);
      }
      const head = (await gitOk([...auth(grove.token), 'ls-remote', url, 'refs/heads/main'])).split('\t')[0];
      assert.equal(head, shas[winners[0]!], `round ${round}: the branch is not the winner's commit`);
    }
  });

  it(`accepts ${CLIENTS} simultaneous pushes to ${CLIENTS} different branches of one repository`, async () => {
    const url = await grove.createRepo('race', 'many-branches');
    await using work = await tempDir();
    const dirs = await Promise.all(Array.from({ length: CLIENTS }, async (_, i) => {
      const dir = path.join(work.path, `b${i}`);
      await gitOk(['init', '-q', '-b', 'main', dir]);
      await commitFile(dir, 'f.txt', `branch ${i}\n`, `branch ${i}`);
      return dir;
    }));
    const results = await Promise.all(dirs.map((dir, i) => git([...auth(grove.token), 'push', url, `main:refs/heads/agent-${i}`], { cwd: dir })));
    for (const [i, result] of results.entries()) assert.equal(result.code, 0, `client ${i}: ${result.stderr}`);
    const listing = await gitOk([...auth(grove.token), 'ls-remote', url, 'refs/heads/agent-*']);
    assert.equal(listing.trim().split('\n').length, CLIENTS);
  });
});
