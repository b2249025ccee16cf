import http from 'node:http';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { startTestServer } from './helpers/server.ts';
import { auth, commitFile, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';

const s = await startTestServer();
const work = await tempDir();
const url = await s.createRepo('c', 'r');
const ids: number[] = [];
const rx = http.createServer((req, res) => { let b = ''; req.on('data', (c) => (b += c)); req.on('end', () => { ids.push(JSON.parse(b).id); res.end('ok'); }); });
await new Promise<void>((r) => rx.listen(0, '127.0.0.1', () => r()));
await s.sdk.webhooks.create('c', { url: `http://127.0.0.1:${(rx.address() as any).port}/`, events: ['push'] });
const trees: string[] = [];
for (let i = 0; i < 6; i++) { const t = path.join(work.path, `t${i}`); await initWorkRepo(t); trees.push(t); }
for (let round = 0; round < 4; round++) {
  const t0 = Date.now();
  await Promise.all(trees.map(async (t, i) => {
    await commitFile(t, 'f', `${round}`, `r${round}`);
    await gitOk([...auth(s.token), 'push', '--force', url, `main:refs/heads/b${i}`], { cwd: t });
  }));
  console.error('round', round, Date.now() - t0);
}
await delay(2000);
const inversions = ids.filter((id, i) => i > 0 && id < ids[i - 1]!).length;
console.error('ids', ids.length, 'inversions', inversions, ids.join(','));
rx.closeAllConnections(); rx.close();
const t1 = Date.now();
await s.close();
console.error('closed', Date.now() - t1);
await work[Symbol.asyncDispose]();
