/**
 * Events under SIGKILL: a worker makes changes through the API (orgs' repos, keys, ref
 * policies, webhooks, commits) while the server is killed at random points, then restarted.
 * After every restart, read from the database: no event is pending, every change that
 * exists has its event exactly once, every event describes a change that happened, and
 * every acknowledged change is there with its event.
 *
 * GROVE_EVENT_TORTURE_TRIALS sets the number of trials (default 20).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Grove } from '@grove/sdk';
import { daemonEnv, killAllDaemons, startDaemon, type Daemon } from './helpers/daemon.ts';
import { gitOk } from './helpers/git.ts';
import { openRawDatabase, onClusterOfOne } from './helpers/database.ts';

const TRIALS = Number(process.env.GROVE_EVENT_TORTURE_TRIALS ?? 20);
const TOKEN = 'grove_event_torture_admin_token_0123';
const ORG = 'events';

function startEventDaemon(dataDir: string): Promise<Daemon> {
  return startDaemon({ dataDir, env: daemonEnv({ GROVE_ADMIN_TOKEN: TOKEN, GROVE_LOG_LEVEL: 'error', GROVE_ALLOWED_OUTBOUND: '127.0.0.1' }) });
}

interface EventRow {
  readonly type: string;
  readonly repo_id: string | null;
  readonly state: string;
  readonly payload: string;
}

/** What the client saw acknowledged: each must be there afterwards, with its event. */
interface Acknowledged {
  readonly repos: Map<string, string>; // id -> name, while not deleted
  readonly deletedRepos: Set<string>;
  readonly keys: Set<string>;
  readonly revokedKeys: Set<string>;
  readonly webhooks: Set<string>;
  readonly commits: Map<string, string>; // sha -> repo id
  readonly policies: Set<string>; // the rule pattern, unique per PUT
  /** Deletions sent but not acknowledged when the server was killed: they may or may not have landed. */
  readonly deleting: Set<string>;
}

const acked: Acknowledged = {
  repos: new Map(), deletedRepos: new Set(), keys: new Set(), revokedKeys: new Set(), webhooks: new Set(), commits: new Map(), policies: new Set(), deleting: new Set(),
};
let counter = 0;

function wasCutOff(error: unknown): boolean {
  const text = String((error as { cause?: unknown })?.cause ?? error);
  return /ECONNREFUSED|ECONNRESET|other side closed|fetch failed|socket|terminated|UND_ERR/i.test(text) || /fetch failed|terminated/.test(String(error));
}

/** One round of changes; returns when the server has gone (a request was cut off). */
async function changeLoop(sdk: Grove): Promise<void> {
  try {
    for (;;) {
      const n = ++counter;
      const repo = await sdk.repos.create(ORG, { name: `r${n}` });
      acked.repos.set(repo.id, repo.name);
      const commit = await sdk.commits.create(ORG, repo.name, { branch: 'main', message: `c${n}`, files: [{ path: 'n.txt', content: `${n}\n` }] });
      acked.commits.set(commit.sha, repo.id);
      await sdk.policies.set(ORG, repo.name, [{ pattern: `p-${n}`, noDelete: true }]);
      acked.policies.add(`p-${n}`);
      const key = await sdk.apiKeys.create({ scope: 'read', resources: [{ org: ORG, repo: repo.name }] });
      acked.keys.add(key.id);
      const hook = await sdk.webhooks.create(ORG, { url: `http://127.0.0.1:9/hook-${n}`, events: ['push'], active: false });
      acked.webhooks.add(hook.id);
      if (n % 2 === 0) {
        await sdk.apiKeys.revoke(key.id);
        acked.revokedKeys.add(key.id);
        acked.deleting.add(hook.id);
        await sdk.webhooks.delete(ORG, hook.id);
        acked.webhooks.delete(hook.id);
        acked.deleting.delete(hook.id);
      }
      if (n % 3 === 0) {
        acked.deleting.add(repo.id);
        await sdk.repos.delete(ORG, repo.name);
        acked.repos.delete(repo.id);
        acked.deletedRepos.add(repo.id);
        acked.deleting.delete(repo.id);
      }
    }
  } catch (error) {
    if (!wasCutOff(error)) throw error;
  }
}

function countBy<T>(items: readonly T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

describe('events under SIGKILL', { timeout: 20 * 60_000 }, () => {
  let dataDir: string;
  const figures = { trials: 0, changes: 0, events: 0 };

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'grove-event-torture-'));
    const daemon = await startEventDaemon(dataDir);
    await new Grove({ baseUrl: daemon.url, token: TOKEN }).orgs.create({ name: ORG });
    daemon.child.kill('SIGTERM');
    await daemon.exited;
  });

  after(async () => {
    killAllDaemons(); // a failed trial leaves its server running
    await rm(dataDir, { recursive: true, force: true });
    process.stdout.write(`# event torture figures: ${JSON.stringify(figures)}\n`);
  });

  it(`never loses nor duplicates an event of a change, and records none without its change, across ${TRIALS} SIGKILLs`, async () => {
    for (let trial = 0; trial <= TRIALS; trial++) {
      const daemon = await startEventDaemon(dataDir);
      await verify(trial); // what the previous kill left, after startup recovery
      if (trial === TRIALS) {
        daemon.child.kill('SIGTERM');
        await daemon.exited;
        break;
      }
      const loop = changeLoop(new Grove({ baseUrl: daemon.url, token: TOKEN }));
      await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 700));
      daemon.child.kill('SIGKILL');
      await daemon.exited;
      await loop;
      figures.trials++;
    }
    assert.ok(acked.repos.size + acked.deletedRepos.size > TRIALS / 2, `only ${acked.repos.size + acked.deletedRepos.size} repositories were acknowledged`);
  });

  async function verify(trial: number): Promise<void> {
    const db = await openRawDatabase(dataDir);
    try {
      const events = await db.all<EventRow>('SELECT type, repo_id, state, payload FROM events');
      const where = `trial ${trial}`;
      assert.deepEqual(events.filter((e) => e.state !== 'committed').map((e) => e.type), [], `${where}: events left pending after recovery`);
      const payload = (e: EventRow) => JSON.parse(e.payload) as Record<string, unknown>;
      const ofType = (type: string) => events.filter((e) => e.type === type);
      figures.events = events.length;

      // repositories: exactly one repo.created per repository ever made, one repo.deleted per one gone
      const repoRows = new Set((await db.all<{ id: string }>('SELECT id FROM repos')).map((r) => r.id));
      const created = countBy(ofType('repo.created'), (e) => String(payload(e).id));
      const deleted = countBy(ofType('repo.deleted'), (e) => String(payload(e).id));
      for (const id of repoRows) {
        assert.equal(created.get(id), 1, `${where}: repository ${id} exists with ${created.get(id) ?? 0} repo.created events`);
        assert.equal(deleted.get(id), undefined, `${where}: repository ${id} exists but has a repo.deleted event`);
      }
      for (const [id, count] of created) {
        assert.equal(count, 1, `${where}: repo.created ${count} times for ${id}`);
        if (!repoRows.has(id)) assert.equal(deleted.get(id), 1, `${where}: repository ${id} is gone without exactly one repo.deleted`);
      }
      for (const id of deleted.keys()) assert.ok(created.has(id), `${where}: repo.deleted for ${id} that was never created`);
      // and no directory outlives its row (startup removes those a crash left)
      const directories = (await readdir(path.join(dataDir, 'repos'), { recursive: true })).map(String).filter((name) => /^[0-9a-f]{2}\/[0-9a-f]+\.git$/.test(name));
      for (const name of directories) assert.ok(repoRows.has(path.basename(name, '.git')), `${where}: ${name} has no database row`);
      for (const id of acked.repos.keys()) assert.ok(repoRows.has(id) || acked.deleting.has(id), `${where}: acknowledged repository ${id} is missing`);
      for (const id of acked.deletedRepos) assert.ok(!repoRows.has(id), `${where}: acknowledged deletion of ${id} was undone`);

      // keys: one key.created per key; one key.revoked per revoked key
      const keys = await db.all<{ id: string; revoked_at: string | null }>('SELECT id, revoked_at FROM api_keys');
      const keyCreated = countBy(ofType('key.created'), (e) => String(payload(e).keyId));
      const keyRevoked = countBy(ofType('key.revoked'), (e) => String(payload(e).keyId));
      for (const key of keys) {
        assert.equal(keyCreated.get(key.id), 1, `${where}: key ${key.id} has ${keyCreated.get(key.id) ?? 0} key.created events`);
        assert.equal(keyRevoked.get(key.id) ?? 0, key.revoked_at === null ? 0 : 1, `${where}: key ${key.id} (revoked ${key.revoked_at}) has ${keyRevoked.get(key.id) ?? 0} key.revoked events`);
      }
      assert.equal(keyCreated.size, keys.length, `${where}: key.created events for keys that do not exist`);
      const keyIds = new Set(keys.map((k) => k.id));
      for (const id of acked.keys) assert.ok(keyIds.has(id), `${where}: acknowledged key ${id} is missing`);
      for (const id of acked.revokedKeys) assert.notEqual(keys.find((k) => k.id === id)?.revoked_at ?? null, null, `${where}: acknowledged revocation of ${id} was undone`);

      // webhooks: created once each; deleted once iff gone
      const hookRows = new Set((await db.all<{ id: string }>('SELECT id FROM webhooks')).map((r) => r.id));
      const hookCreated = countBy(ofType('webhook.created'), (e) => String(payload(e).id));
      const hookDeleted = countBy(ofType('webhook.deleted'), (e) => String(payload(e).id));
      for (const [id, count] of hookCreated) {
        assert.equal(count, 1, `${where}: webhook.created ${count} times for ${id}`);
        assert.equal(hookDeleted.get(id) ?? 0, hookRows.has(id) ? 0 : 1, `${where}: webhook ${id} (exists: ${hookRows.has(id)}) has ${hookDeleted.get(id) ?? 0} webhook.deleted events`);
      }
      for (const id of hookRows) assert.ok(hookCreated.has(id), `${where}: webhook ${id} exists without webhook.created`);
      for (const id of acked.webhooks) assert.ok(hookRows.has(id) || acked.deleting.has(id), `${where}: acknowledged webhook ${id} is missing`);

      // policies: one policy.updated per rule set written, and the stored rules are the last event's
      const policyEvents = countBy(ofType('policy.updated'), (e) => String((payload(e).rules as { pattern: string }[])[0]?.pattern));
      for (const [pattern, count] of policyEvents) assert.equal(count, 1, `${where}: policy.updated ${count} times for ${pattern}`);
      const policies = await db.all<{ repo_id: string; rules: string }>('SELECT repo_id, rules FROM repo_policies');
      for (const policy of policies) {
        if (!repoRows.has(policy.repo_id)) continue;
        const pattern = (JSON.parse(policy.rules) as { pattern: string }[])[0]!.pattern;
        assert.equal(policyEvents.get(pattern), 1, `${where}: stored policy ${pattern} has no policy.updated event`);
      }
      for (const pattern of acked.policies) assert.equal(policyEvents.get(pattern), 1, `${where}: acknowledged policy ${pattern} has no event`);

      // commits (journaled ref events): exactly one commit.created per commit on a branch, none for a commit that is not
      const commitEvents = countBy(ofType('commit.created').filter((e) => e.repo_id !== null && repoRows.has(e.repo_id)), (e) => `${e.repo_id}:${String(payload(e).sha)}`);
      for (const [key, count] of commitEvents) assert.equal(count, 1, `${where}: commit.created ${count} times for ${key}`);
      for (const id of repoRows) {
        const gitDir = path.join(dataDir, 'repos', id.slice(-2), `${id}.git`);
        // The refs' truth: the repository's own, or PostgreSQL's in a cluster (a node killed after COMMIT has not updated its copy).
        const heads = onClusterOfOne
          ? (await db.all<{ oid: string }>("SELECT oid FROM repo_refs WHERE repo_id = ? AND name LIKE 'refs/heads/%'", [id])).map((r) => r.oid)
          : (await gitOk(['--git-dir', gitDir, 'for-each-ref', '--format=%(objectname)', 'refs/heads/'])).trim().split('\n').filter(Boolean);
        for (const sha of heads) assert.equal(commitEvents.get(`${id}:${sha}`), 1, `${where}: ${id} has commit ${sha} without its commit.created event`);
        assert.ok(heads.length <= 1, `${where}: ${id} has more branches than the worker made`);
        const eventsHere = [...commitEvents.keys()].filter((k) => k.startsWith(`${id}:`));
        assert.deepEqual(eventsHere, heads.map((sha) => `${id}:${sha}`), `${where}: ${id} has a commit.created event for a commit that did not land`);
      }
      for (const [sha, repoId] of acked.commits) {
        if (repoRows.has(repoId)) assert.equal(commitEvents.get(`${repoId}:${sha}`), 1, `${where}: acknowledged commit ${sha} has no event`);
      }
      // an in-flight deletion is settled now: it landed or it did not
      for (const id of acked.deleting) {
        if (acked.repos.has(id) && !repoRows.has(id)) {
          acked.repos.delete(id);
          acked.deletedRepos.add(id);
        }
        if (acked.webhooks.has(id) && !hookRows.has(id)) acked.webhooks.delete(id);
      }
      acked.deleting.clear();
      figures.changes = repoRows.size + deleted.size + keys.length + hookCreated.size + policyEvents.size + commitEvents.size;
    } finally {
      await db.close();
    }
  }
});
