/**
 * Fair share under a runaway agent (issue 11): 32 agents push a branch each, once alone and
 * once while one other key keeps 500 clones of one commit in flight. The agents' push p95
 * with the runaway, divided by their p95 alone, is the figure (target: at most 1.5x). Grove
 * only: the peer has no notion of a key.
 */
import { pushFleet, type PushFleetResult, type Side } from './e2e.ts';
import { runLoad, type LoadResult } from './load-client.ts';
import { httpRequest } from './servers.ts';

export interface FairnessResult {
  readonly agents: number;
  readonly runawayClones: number;
  readonly alone: PushFleetResult;
  readonly withRunaway: PushFleetResult;
  /** The runaway's clones while the agents pushed: completed ones, and those refused (its share was full). */
  readonly runaway: LoadResult;
}

export async function runFairness(
  side: Side,
  apiRoot: string,
  adminHeaders: Readonly<Record<string, string>>,
  pusher: string,
  commits: readonly string[],
  tip: string,
  runawayClones: number,
): Promise<FairnessResult> {
  const created = await httpRequest(undefined, `${apiRoot}/keys`, {
    method: 'POST',
    headers: { ...adminHeaders, 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ scope: 'read', resources: [{ org: 'bench' }], name: 'runaway' }),
  });
  if (created.status !== 201) throw new Error(`create the runaway key: HTTP ${created.status} ${created.body}`);
  const runawayToken = (JSON.parse(created.body) as { token: string }).token;
  const half = Math.floor(commits.length / 2);
  const items = (from: number, prefix: string) => commits.slice(from, from + half).map((commit, i) => ({ commit, ref: `refs/heads/${prefix}/${i}` }));

  await side.waitIdle();
  const alone = await pushFleet(side, pusher, items(0, 'fair-alone'), half, 300_000);
  await side.waitIdle();
  // The runaway runs for as long as the agents could need, then ends by its time limit.
  const runawayDone = runLoad(
    { repoUrl: side.repoUrl, headers: { Authorization: `Bearer ${runawayToken}` } },
    { op: 'full-fetch', tip, requests: 10_000_000, concurrency: runawayClones, timeLimitMs: Math.max(20_000, alone.wallMs * 8), warmup: 0, transport: 'raw' },
  );
  await new Promise((resolve) => setTimeout(resolve, 2000)); // its 500 clones in flight first
  const withRunaway = await pushFleet(side, pusher, items(half, 'fair-runaway'), half, 300_000);
  const runaway = await runawayDone;
  return { agents: half, runawayClones, alone, withRunaway, runaway };
}
