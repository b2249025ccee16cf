/**
 * Remote sync against a real git server on loopback (git http-backend with Basic auth):
 * pull under every divergence rule, push-forward with leases, protected branches on the
 * remote, webhooks (signature, echo, coalescing), the poll, pausing on a rejected credential
 * and resuming on rotation, read-only mirrors, the hidden tracking namespace, and secrets
 * that never reach the database, a repository config or a run record in the clear.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { git, gitOk, tempDir } from './helpers/git.ts';
import { databaseContents } from './helpers/database.ts';
import { REMOTE_TOKEN, REMOTE_USER, SyncRig } from './helpers/sync-rig.ts';

const ORG = 'acme';

describe('remote sync with a git server on loopback', () => {
  let work: Awaited<ReturnType<typeof tempDir>>;
  let rig: SyncRig;
  let credentialId: string;
  let repoCount = 0;

  /** A remote repository with one commit on main (and more branches if asked), and an empty Grove repository. */
  async function pair(branches: readonly string[] = []): Promise<{ name: string; url: string; tree: Awaited<ReturnType<SyncRig['workTree']>>; main: string }> {
    const name = `app-${++repoCount}`;
    const url = await rig.remote.createRepo(name);
    const tree = await rig.workTree();
    const main = await tree.commit();
    await rig.pushToRemote(tree.dir, name, ['HEAD:refs/heads/main', ...branches.map((b) => `HEAD:refs/heads/${b}`)]);
    await rig.grove.createRepo(ORG, name);
    return { name, url, tree, main };
  }

  before(async () => {
    work = await tempDir();
    rig = await SyncRig.start(work.path);
    await rig.grove.sdk.orgs.create({ name: ORG });
    credentialId = await rig.credential(ORG);
  });

  after(async () => {
    await rig.close();
    await work[Symbol.asyncDispose]();
  });

  describe('pull', () => {
    it('brings every branch and tag with their whole history, and hides its tracking refs from clients', async () => {
      const { name, url, tree } = await pair(['feature']);
      for (let i = 0; i < 5; i++) await tree.commit();
      await gitOk(['tag', '-a', 'v1', '-m', 'release'], { cwd: tree.dir });
      await rig.pushToRemote(tree.dir, name, ['HEAD:refs/heads/main', 'refs/tags/v1']);
      const upstream = await rig.attach(ORG, name, url, { credentialId });
      const runs = await rig.ok('GET', `/repos/${ORG}/${name}/upstreams/origin/syncs`);
      assert.equal(runs.items.length, 1);
      assert.equal(runs.items[0].status, 'succeeded');
      assert.deepEqual(runs.items[0].counts, { created: 3 });
      const remoteRefs = await rig.lsRemote(rig.remote.authedUrl(name));
      const groveRefs = await rig.lsRemote(rig.groveUrl(ORG, name));
      assert.deepEqual(groveRefs, remoteRefs, 'clients see exactly the remote refs: no refs/grove/ tracking ref');
      const onDisk = await rig.groveRefs(ORG, name);
      assert.equal(onDisk.get(`refs/grove/upstreams/${upstream.id}/heads/main`), remoteRefs.get('refs/heads/main'), 'the tracking ref is kept on disk');
      await using clone = await tempDir();
      await gitOk(['clone', '-q', '--mirror', rig.groveUrl(ORG, name), clone.path]);
      assert.equal((await gitOk(['rev-list', '--count', '--all'], { cwd: clone.path })).trim(), '6');
      await gitOk(['fsck', '--strict'], { cwd: clone.path });
      const branches = await rig.ok('GET', `/repos/${ORG}/${name}/branches`);
      assert.deepEqual(branches.items.map((b: { name: string }) => b.name).sort(), ['feature', 'main']);
    });

    it('fast-forwards a branch the upstream moved, and reports nothing else', async () => {
      const { name, url, tree } = await pair(['feature']);
      await rig.attach(ORG, name, url, { credentialId });
      const next = await tree.commit();
      await rig.pushToRemote(tree.dir, name, ['HEAD:refs/heads/main']);
      const run = await rig.sync(ORG, name);
      assert.equal(run.status, 'succeeded');
      assert.deepEqual(run.counts, { updated: 1, unchanged: 1 });
      assert.deepEqual(run.refs.map((r: { ref: string; outcome: string; after: string }) => [r.ref, r.outcome, r.after]), [['refs/heads/main', 'updated', next]]);
      assert.equal((await rig.lsRemote(rig.groveUrl(ORG, name))).get('refs/heads/main'), next);
    });

    it('reports a branch both sides changed and leaves it alone under the default rules', async () => {
      const { name, url, tree } = await pair();
      await rig.attach(ORG, name, url, { credentialId });
      const grove = await rig.workTree();
      await gitOk(['pull', '-q', rig.groveUrl(ORG, name), 'main'], { cwd: grove.dir });
      const agentCommit = await grove.commit('agent.txt');
      assert.equal((await rig.pushToGrove(grove.dir, ORG, name, ['HEAD:refs/heads/main'])).code, 0);
      await tree.commit('human.txt');
      await rig.pushToRemote(tree.dir, name, ['HEAD:refs/heads/main']);
      const run = await rig.sync(ORG, name, { direction: 'pull' });
      assert.equal(run.status, 'partial');
      assert.equal(run.refs[0].outcome, 'diverged');
      assert.match(run.refs[0].message, /both sides changed/);
      assert.equal((await rig.lsRemote(rig.groveUrl(ORG, name))).get('refs/heads/main'), agentCommit, "Grove's commit is untouched");
      const again = await rig.sync(ORG, name, { direction: 'pull' });
      assert.deepEqual(again.counts, { unchanged: 1 }, 'a divergence is reported once, not every run');
    });

    it('overwrites a diverged branch under onDivergence overwrite, keeping the overwritten tip under a backup ref', async () => {
      const { name, url, tree } = await pair();
      const upstream = await rig.attach(ORG, name, url, { credentialId, rules: [{ refs: 'refs/heads/**', direction: 'pull', onDivergence: 'overwrite' }] });
      const grove = await rig.workTree();
      await gitOk(['pull', '-q', rig.groveUrl(ORG, name), 'main'], { cwd: grove.dir });
      const agentCommit = await grove.commit('agent.txt');
      await rig.pushToGrove(grove.dir, ORG, name, ['HEAD:refs/heads/main']);
      const human = await tree.commit('human.txt');
      await rig.pushToRemote(tree.dir, name, ['HEAD:refs/heads/main']);
      const run = await rig.sync(ORG, name, { direction: 'pull' });
      assert.equal(run.status, 'succeeded');
      assert.equal(run.refs[0].outcome, 'forced');
      assert.equal((await rig.lsRemote(rig.groveUrl(ORG, name))).get('refs/heads/main'), human);
      const backup = [...(await rig.groveRefs(ORG, name))].find(([ref]) => ref.startsWith(`refs/grove/backups/${upstream.id}/${run.id}/grove/heads/main`));
      assert.ok(backup, 'a backup ref was written');
      assert.equal(backup[1], agentCommit, "the agent's commit stays reachable");
    });

    it('publishes the upstream tip beside a diverged branch under onDivergence keep', async () => {
      const { name, url, tree } = await pair();
      await rig.attach(ORG, name, url, { credentialId, rules: [{ refs: 'refs/heads/**', direction: 'pull', onDivergence: 'keep' }] });
      const grove = await rig.workTree();
      await gitOk(['pull', '-q', rig.groveUrl(ORG, name), 'main'], { cwd: grove.dir });
      const agentCommit = await grove.commit('agent.txt');
      await rig.pushToGrove(grove.dir, ORG, name, ['HEAD:refs/heads/main']);
      const human = await tree.commit('human.txt');
      await rig.pushToRemote(tree.dir, name, ['HEAD:refs/heads/main']);
      const run = await rig.sync(ORG, name, { direction: 'pull' });
      assert.equal(run.refs[0].outcome, 'kept');
      const refs = await rig.lsRemote(rig.groveUrl(ORG, name));
      assert.equal(refs.get('refs/heads/main'), agentCommit);
      assert.equal(refs.get('refs/heads/upstream/main'), human);
    });

    it('keeps a branch deleted upstream under deletions ignore, and deletes it under propagate', async () => {
      for (const deletions of ['ignore', 'propagate'] as const) {
        const { name, url, tree } = await pair(['doomed']);
        await rig.attach(ORG, name, url, { credentialId, rules: [{ refs: 'refs/heads/**', direction: 'pull', deletions }] });
        await rig.pushToRemote(tree.dir, name, [':refs/heads/doomed']);
        const run = await rig.sync(ORG, name);
        const refs = await rig.lsRemote(rig.groveUrl(ORG, name));
        if (deletions === 'ignore') {
          assert.equal(run.refs[0].outcome, 'unchanged');
          assert.match(run.refs[0].message, /deleted upstream; kept/);
          assert.ok(refs.has('refs/heads/doomed'));
        } else {
          assert.equal(run.refs[0].outcome, 'deleted');
          assert.ok(!refs.has('refs/heads/doomed'));
        }
      }
    });

    it('treats a moved tag as a divergence, never as a fast-forward', async () => {
      const { name, url, tree } = await pair();
      await gitOk(['tag', 'v1'], { cwd: tree.dir });
      await rig.pushToRemote(tree.dir, name, ['refs/tags/v1']);
      await rig.attach(ORG, name, url, { credentialId });
      const first = (await rig.lsRemote(rig.groveUrl(ORG, name))).get('refs/tags/v1');
      await tree.commit();
      await gitOk(['tag', '-f', 'v1'], { cwd: tree.dir });
      await rig.pushToRemote(tree.dir, name, ['refs/tags/v1'], true);
      const run = await rig.sync(ORG, name);
      assert.equal(run.refs.find((r: { ref: string }) => r.ref === 'refs/tags/v1').outcome, 'diverged');
      assert.equal((await rig.lsRemote(rig.groveUrl(ORG, name))).get('refs/tags/v1'), first);
    });

    it('changes nothing on a dry run, and says what it would do', async () => {
      const { name, url, tree } = await pair();
      await rig.attach(ORG, name, url, { credentialId });
      const before = await rig.groveRefs(ORG, name);
      await tree.commit();
      await rig.pushToRemote(tree.dir, name, ['HEAD:refs/heads/main', 'HEAD:refs/heads/new']);
      const run = await rig.sync(ORG, name, { dryRun: true });
      assert.equal(run.dryRun, true);
      assert.deepEqual(run.counts, { created: 1, updated: 1 });
      assert.deepEqual(await rig.groveRefs(ORG, name), before);
    });
  });

  describe('push', () => {
    const agentRules = [
      { refs: 'refs/heads/agent/**', direction: 'push', onDivergence: 'skip', deletions: 'propagate' },
      { refs: 'refs/heads/**', direction: 'pull' },
    ];

    it('forwards an accepted Grove push to the remote by itself, and the echo webhook changes nothing', async () => {
      const { name, url } = await pair();
      const upstream = await rig.attach(ORG, name, url, { credentialId, rules: agentRules });
      const agent = await rig.workTree();
      await gitOk(['pull', '-q', rig.groveUrl(ORG, name), 'main'], { cwd: agent.dir });
      const commit = await agent.commit('agent.txt');
      const started = Date.now();
      assert.equal((await rig.pushToGrove(agent.dir, ORG, name, ['HEAD:refs/heads/agent/fix'])).code, 0);
      const deadline = started + 10_000;
      while ((await rig.lsRemote(rig.remote.authedUrl(name))).get('refs/heads/agent/fix') !== commit) {
        assert.ok(Date.now() < deadline, 'the push reached the remote');
        await delay(25);
      }
      await rig.idle(upstream.id);
      const runs = await rig.ok('GET', `/repos/${ORG}/${name}/upstreams/origin/syncs`);
      const forward = runs.items.find((r: { trigger: string }) => r.trigger === 'push');
      assert.ok(forward, 'a push-forward run');
      assert.deepEqual(forward.refs.map((r: { ref: string; outcome: string }) => [r.ref, r.outcome]), [['refs/heads/agent/fix', 'created']]);
      // The remote announces the push Grove made: the tracking ref already says so.
      const body = JSON.stringify({ ref: 'refs/heads/agent/fix', after: commit });
      const hook = await fetch(`${rig.grove.url}${upstream.webhook.url}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${createHmac('sha256', upstream.webhook.secret).update(body).digest('hex')}` }, body });
      assert.equal(hook.status, 202);
      await delay(100);
      await rig.idle(upstream.id);
      const after = await rig.ok('GET', `/repos/${ORG}/${name}/upstreams/origin/syncs`);
      assert.equal(after.items.length, runs.items.length, 'no run for the echo');
    });

    it('never overwrites a commit a human pushed to the remote branch: the ref is diverged and the remote keeps it', async () => {
      const { name, url } = await pair();
      await rig.attach(ORG, name, url, { credentialId, rules: agentRules, pushForward: false });
      const agent = await rig.workTree();
      await gitOk(['pull', '-q', rig.groveUrl(ORG, name), 'main'], { cwd: agent.dir });
      await agent.commit('agent.txt');
      await rig.pushToGrove(agent.dir, ORG, name, ['HEAD:refs/heads/agent/x']);
      assert.equal((await rig.sync(ORG, name, { direction: 'push' })).refs[0].outcome, 'created');
      const human = await rig.workTree();
      await gitOk(['pull', '-q', rig.remote.authedUrl(name), 'agent/x'], { cwd: human.dir });
      const humanCommit = await human.commit('human.txt');
      await rig.pushToRemote(human.dir, name, ['HEAD:refs/heads/agent/x']);
      await agent.commit('agent2.txt');
      await rig.pushToGrove(agent.dir, ORG, name, ['HEAD:refs/heads/agent/x']);
      const run = await rig.sync(ORG, name, { direction: 'push' });
      assert.equal(run.status, 'partial');
      assert.equal(run.refs[0].outcome, 'diverged');
      assert.equal((await rig.lsRemote(rig.remote.authedUrl(name))).get('refs/heads/agent/x'), humanCommit);
    });

    it('reports a branch the remote refuses with its reason, and applies the others', async () => {
      const { name, url } = await pair();
      await rig.remote.protect(name, 'refs/heads/agent/locked', 'GH006: Protected branch update failed for refs/heads/agent/locked.');
      await rig.attach(ORG, name, url, { credentialId, rules: agentRules, pushForward: false });
      const agent = await rig.workTree();
      await gitOk(['pull', '-q', rig.groveUrl(ORG, name), 'main'], { cwd: agent.dir });
      const commit = await agent.commit('agent.txt');
      await rig.pushToGrove(agent.dir, ORG, name, ['HEAD:refs/heads/agent/locked', 'HEAD:refs/heads/agent/open']);
      const run = await rig.sync(ORG, name, { direction: 'push' });
      assert.equal(run.status, 'partial');
      const byRef = new Map(run.refs.map((r: { ref: string }) => [r.ref, r]));
      assert.equal((byRef.get('refs/heads/agent/locked') as { outcome: string }).outcome, 'rejected');
      assert.equal((byRef.get('refs/heads/agent/open') as { outcome: string }).outcome, 'created');
      assert.ok(run.remoteMessages.some((m: string) => m.includes('GH006')), JSON.stringify(run.remoteMessages));
      const remote = await rig.lsRemote(rig.remote.authedUrl(name));
      assert.equal(remote.get('refs/heads/agent/open'), commit);
      assert.ok(!remote.has('refs/heads/agent/locked'));
    });

    it('deletes a pushed branch on the remote when Grove deletes it under deletions propagate', async () => {
      const { name, url } = await pair();
      await rig.attach(ORG, name, url, { credentialId, rules: agentRules, pushForward: false });
      const agent = await rig.workTree();
      await gitOk(['pull', '-q', rig.groveUrl(ORG, name), 'main'], { cwd: agent.dir });
      await agent.commit('agent.txt');
      await rig.pushToGrove(agent.dir, ORG, name, ['HEAD:refs/heads/agent/tmp']);
      await rig.sync(ORG, name, { direction: 'push' });
      assert.ok((await rig.lsRemote(rig.remote.authedUrl(name))).has('refs/heads/agent/tmp'));
      await rig.pushToGrove(agent.dir, ORG, name, [':refs/heads/agent/tmp']);
      const run = await rig.sync(ORG, name, { direction: 'push' });
      assert.equal(run.refs[0].outcome, 'deleted');
      assert.ok(!(await rig.lsRemote(rig.remote.authedUrl(name))).has('refs/heads/agent/tmp'));
    });
  });

  describe('triggers', () => {
    it('pulls on a signed push webhook, and refuses an unsigned one without queueing anything', async () => {
      const { name, url, tree } = await pair();
      const upstream = await rig.attach(ORG, name, url, { credentialId });
      const next = await tree.commit();
      await rig.pushToRemote(tree.dir, name, ['HEAD:refs/heads/main']);
      const body = JSON.stringify({ ref: 'refs/heads/main', after: next });
      const forged = await fetch(`${rig.grove.url}${upstream.webhook.url}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` }, body });
      assert.equal(forged.status, 401);
      assert.equal(((await forged.json()) as { error: { code: string } }).error.code, 'unauthorized');
      assert.equal((await rig.ok('GET', `/repos/${ORG}/${name}/upstreams/origin/syncs`)).items.length, 1, 'nothing queued');
      const signature = `sha256=${createHmac('sha256', upstream.webhook.secret).update(body).digest('hex')}`;
      const started = Date.now();
      const signed = await fetch(`${rig.grove.url}${upstream.webhook.url}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': 'd-1', 'x-hub-signature-256': signature }, body });
      assert.equal(signed.status, 202);
      const deadline = started + 10_000;
      while ((await rig.lsRemote(rig.groveUrl(ORG, name))).get('refs/heads/main') !== next) {
        assert.ok(Date.now() < deadline, 'the webhook moved Grove main');
        await delay(25);
      }
      await rig.idle(upstream.id);
      const duplicate = await fetch(`${rig.grove.url}${upstream.webhook.url}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': 'd-1', 'x-hub-signature-256': signature }, body });
      assert.equal(duplicate.status, 202);
      assert.equal(((await duplicate.json()) as { accepted: boolean }).accepted, false);
      const shown = await rig.ok('GET', `/repos/${ORG}/${name}/upstreams/origin`);
      assert.equal(shown.webhook.healthy, true);
    });

    it('coalesces a burst of webhooks into at most two fetches', async () => {
      const { name, url, tree } = await pair();
      const upstream = await rig.attach(ORG, name, url, { credentialId });
      const next = await tree.commit();
      await rig.pushToRemote(tree.dir, name, ['HEAD:refs/heads/main']);
      const since = rig.remote.requests.length;
      const body = JSON.stringify({ ref: 'refs/heads/main', after: next });
      const signature = `sha256=${createHmac('sha256', upstream.webhook.secret).update(body).digest('hex')}`;
      const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => fetch(`${rig.grove.url}${upstream.webhook.url}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': `burst-${i}`, 'x-hub-signature-256': signature }, body })));
      assert.ok(answers.every((a) => a.status === 202));
      await delay(200);
      await rig.idle(upstream.id);
      assert.equal((await rig.lsRemote(rig.groveUrl(ORG, name))).get('refs/heads/main'), next);
      const fetches = rig.remote.served('git-upload-pack', since);
      assert.ok(fetches >= 1 && fetches <= 2 * 2, `${fetches} upload-pack requests (a fetch is ls-refs + fetch)`);
    });

    it('polls with one ls-remote and writes no run when nothing changed, and runs when something did', async () => {
      const { name, url, tree } = await pair();
      const upstream = await rig.attach(ORG, name, url, { credentialId });
      const runsBefore = (await rig.ok('GET', `/repos/${ORG}/${name}/upstreams/origin/syncs`)).items.length;
      const since = rig.remote.requests.length;
      await rig.grove.server.sync.pollNow(upstream.id);
      assert.equal((await rig.ok('GET', `/repos/${ORG}/${name}/upstreams/origin/syncs`)).items.length, runsBefore, 'a no-op poll writes no run');
      assert.ok(rig.remote.requests.length - since <= 2, `${rig.remote.requests.length - since} requests for a no-op poll`);
      const checked = await rig.ok('GET', `/repos/${ORG}/${name}/upstreams/origin`);
      assert.ok(checked.status.lastCheckedAt !== null);
      const next = await tree.commit();
      await rig.pushToRemote(tree.dir, name, ['HEAD:refs/heads/main']);
      await rig.grove.server.sync.pollNow(upstream.id);
      await rig.idle(upstream.id);
      const runs = await rig.ok('GET', `/repos/${ORG}/${name}/upstreams/origin/syncs`);
      assert.equal(runs.items[0].trigger, 'poll');
      assert.equal((await rig.lsRemote(rig.groveUrl(ORG, name))).get('refs/heads/main'), next);
    });

    it('makes one run for a divergence nobody resolves, not one per poll', async () => {
      const { name, url, tree } = await pair();
      const upstream = await rig.attach(ORG, name, url, { credentialId, rules: [{ refs: 'refs/heads/**', direction: 'both' }], pushForward: false });
      const agent = await rig.workTree();
      await gitOk(['pull', '-q', rig.groveUrl(ORG, name), 'main'], { cwd: agent.dir });
      await agent.commit('agent.txt');
      assert.equal((await rig.pushToGrove(agent.dir, ORG, name, ['HEAD:refs/heads/main'])).code, 0);
      await tree.commit('human.txt');
      await rig.pushToRemote(tree.dir, name, ['HEAD:refs/heads/main']);
      const before = (await rig.ok('GET', `/repos/${ORG}/${name}/upstreams/origin/syncs`)).items.length;
      for (let i = 0; i < 3; i++) await rig.grove.server.sync.pollNow(upstream.id);
      const runs = (await rig.ok('GET', `/repos/${ORG}/${name}/upstreams/origin/syncs`)).items;
      assert.equal(runs.length, before + 1, 'the first poll runs and reports it; the next two have nothing new');
      assert.equal(runs[0].refs[0].outcome, 'diverged');
      assert.equal(runs[0].status, 'partial');
    });
  });

  describe('credentials', () => {
    it('pauses an upstream after one rejected attempt, and resumes it when the credential is rotated', async () => {
      const { name, url, tree } = await pair();
      const credential = await rig.credential(ORG, `rotating-${name}`);
      const upstream = await rig.attach(ORG, name, url, { credentialId: credential });
      rig.remote.tokens.set(REMOTE_USER, 'tok_rotated_by_the_remote_admin');
      const next = await tree.commit();
      await gitOk(['push', rig.remote.authedUrl(name), 'HEAD:refs/heads/main'], { cwd: tree.dir });
      const since = rig.remote.requests.length;
      const run = await rig.sync(ORG, name);
      assert.equal(run.status, 'failed');
      assert.equal(run.error.code, 'credential_rejected');
      const attempts = rig.remote.requests.slice(since).filter((r) => r.status === 401).length;
      assert.ok(attempts >= 1 && attempts <= 2, `${attempts} rejected requests: one attempt, no retry storm`);
      const paused = await rig.ok('GET', `/repos/${ORG}/${name}/upstreams/origin`);
      assert.equal(paused.status.state, 'paused');
      assert.equal(paused.status.pausedReason, 'credential_rejected');
      assert.equal((await rig.ok('GET', `/orgs/${ORG}/credentials/${credential}`)).status, 'rejected');
      const refused = await rig.api('POST', `/repos/${ORG}/${name}/upstreams/origin/syncs`, {});
      assert.equal(refused.status, 409);
      assert.equal(refused.json.error.code, 'upstream_paused');
      await rig.grove.server.sync.pollNow(upstream.id);
      assert.equal(rig.remote.requests.slice(since).filter((r) => r.status === 401).length, attempts, 'a paused upstream is not polled');
      await rig.ok('PUT', `/orgs/${ORG}/credentials/${credential}/secret`, { secret: 'tok_rotated_by_the_remote_admin' });
      await delay(50);
      await rig.idle(upstream.id);
      const deadline = Date.now() + 10_000;
      while ((await rig.lsRemote(rig.groveUrl(ORG, name))).get('refs/heads/main') !== next) {
        assert.ok(Date.now() < deadline, 'synced after rotation');
        await delay(50);
      }
      assert.equal((await rig.ok('GET', `/repos/${ORG}/${name}/upstreams/origin`)).status.state, 'active');
      rig.remote.tokens.set(REMOTE_USER, REMOTE_TOKEN);
    });

    it('refuses an upstream whose credential the remote rejects, with 424 and nothing stored', async () => {
      const { name, url } = await pair();
      const bad = await rig.ok('POST', `/orgs/${ORG}/credentials`, { name: `bad-${name}`, kind: 'basic', username: REMOTE_USER, secret: 'tok_wrong_wrong_wrong' }, 201);
      const answer = await rig.api('PUT', `/repos/${ORG}/${name}/upstreams/origin`, { url, credentialId: bad.id });
      assert.equal(answer.status, 424);
      assert.equal(answer.json.error.code, 'credential_rejected');
      assert.equal((await rig.api('GET', `/repos/${ORG}/${name}/upstreams/origin`)).status, 404);
    });

    it('refuses URLs with credentials, unknown schemes, private destinations and unknown credentials', async () => {
      const { name, url } = await pair();
      const cases: [unknown, number, RegExp][] = [
        [{ url: url.replace('http://', 'http://user:pw@') }, 400, /must not carry credentials/],
        [{ url: 'ssh://git@example.com/a.git' }, 400, /https/],
        [{ url: 'file:///etc' }, 400, /https/],
        [{ url: 'http://169.254.169.254/latest' }, 422, /loopback, private or reserved/],
        [{ url, credentialId: 'cred_nope' }, 422, /no credential/],
        [{ url, rules: [{ refs: 'refs/pull/*', direction: 'pull' }] }, 400, /refs\/heads\/ or refs\/tags\//],
        [{ url, readOnly: true, rules: [{ refs: 'refs/heads/**', direction: 'push' }] }, 400, /only pulls/],
      ];
      for (const [body, status, message] of cases) {
        const answer = await rig.api('PUT', `/repos/${ORG}/${name}/upstreams/origin`, body);
        assert.equal(answer.status, status, JSON.stringify(body));
        assert.match(answer.json.error.message, message);
      }
      assert.equal((await rig.ok('GET', `/repos/${ORG}/${name}/upstreams`)).items.length, 0);
    });

    it('keeps the token out of the database file, repository configs, run records and the API', async () => {
      const { name, url, tree } = await pair();
      await rig.attach(ORG, name, url, { credentialId });
      await tree.commit();
      await rig.pushToRemote(tree.dir, name, ['HEAD:refs/heads/main']);
      await rig.sync(ORG, name);
      const needles = [REMOTE_TOKEN, Buffer.from(`${REMOTE_USER}:${REMOTE_TOKEN}`).toString('base64')];
      const database = await databaseContents(rig.grove.dataDir);
      for (const needle of needles) assert.ok(!database.includes(needle), 'not in the database');
      const row = await rig.grove.sdk.repos.get(ORG, name);
      const config = await readFile(path.join(rig.grove.server.repos.gitDir(row.id), 'config'), 'utf8');
      for (const needle of needles) assert.ok(!config.includes(needle), 'not in the repository config');
      const answers = JSON.stringify([await rig.ok('GET', `/orgs/${ORG}/credentials`), await rig.ok('GET', `/repos/${ORG}/${name}/upstreams/origin/syncs`), await rig.ok('GET', `/repos/${ORG}/${name}/upstreams/origin`)]);
      for (const needle of needles) assert.ok(!answers.includes(needle), 'not in any API answer');
      const objects = path.join(rig.grove.server.repos.gitDir(row.id), 'objects');
      assert.deepEqual((await readdir(objects)).filter((n) => n.startsWith('incoming-')), [], 'no scratch repository left behind');
    });
  });

  describe('mirrors and the hidden namespace', () => {
    it('refuses pushes and API writes to a read-only mirror with the reason, and follows the remote exactly', async () => {
      const { name, url, tree } = await pair(['old']);
      await rig.attach(ORG, name, url, { credentialId, readOnly: true });
      const agent = await rig.workTree();
      await gitOk(['pull', '-q', rig.groveUrl(ORG, name), 'main'], { cwd: agent.dir });
      await agent.commit();
      const pushed = await rig.pushToGrove(agent.dir, ORG, name, ['HEAD:refs/heads/main']);
      assert.notEqual(pushed.code, 0);
      assert.match(pushed.stderr, /this repository mirrors http:\/\/127\.0\.0\.1:\d+\/app-\d+\.git; push there/);
      const write = await rig.api('POST', `/repos/${ORG}/${name}/branches`, { name: 'x', sha: 'main' });
      assert.equal(write.status, 403);
      assert.match(write.json.error.message, /mirrors/);
      await tree.commit();
      await rig.pushToRemote(tree.dir, name, ['+HEAD~1:refs/heads/main', ':refs/heads/old'], true);
      const run = await rig.sync(ORG, name);
      assert.equal(run.status, 'succeeded');
      assert.deepEqual(await rig.lsRemote(rig.groveUrl(ORG, name)), await rig.lsRemote(rig.remote.authedUrl(name)));
    });

    it('refuses a client push to refs/grove/ and removes tracking refs when the upstream is detached', async () => {
      const { name, url } = await pair();
      const upstream = await rig.attach(ORG, name, url, { credentialId });
      const agent = await rig.workTree();
      await gitOk(['pull', '-q', rig.groveUrl(ORG, name), 'main'], { cwd: agent.dir });
      const pushed = await git(['push', rig.groveUrl(ORG, name), `HEAD:refs/grove/upstreams/${upstream.id}/heads/main`], { cwd: agent.dir });
      assert.notEqual(pushed.code, 0);
      assert.match(pushed.stderr, /refs\/grove\/ is reserved/);
      const answer = await rig.api('DELETE', `/repos/${ORG}/${name}/upstreams/origin`);
      assert.equal(answer.status, 204);
      assert.deepEqual([...(await rig.groveRefs(ORG, name)).keys()].filter((r) => r.startsWith('refs/grove/')), []);
      assert.equal((await rig.api('GET', `/repos/${ORG}/${name}/upstreams/origin/syncs`)).status, 404);
    });
  });
});

describe('one-call import of a remote repository', () => {
  let work: Awaited<ReturnType<typeof tempDir>>;
  let rig: SyncRig;
  let credentialId: string;

  async function remoteWithHistory(name: string): Promise<Awaited<ReturnType<SyncRig['workTree']>>> {
    await rig.remote.createRepo(name);
    const tree = await rig.workTree();
    for (let i = 0; i < 12; i++) await tree.commit(`f${i % 3}.txt`);
    await gitOk(['tag', '-a', 'v1', '-m', 'one'], { cwd: tree.dir });
    await gitOk(['branch', 'feature'], { cwd: tree.dir });
    await rig.pushToRemote(tree.dir, name, ['HEAD:refs/heads/trunk', 'refs/heads/feature', 'refs/tags/v1', 'HEAD~3:refs/pull/1/head']);
    await gitOk(['--git-dir', rig.remote.gitDir(name), 'symbolic-ref', 'HEAD', 'refs/heads/trunk']);
    return tree;
  }

  async function finished(importId: string): Promise<any> {
    await rig.grove.server.imports.idle();
    return rig.ok('GET', `/orgs/${ORG}/imports/${importId}`);
  }

  before(async () => {
    work = await tempDir();
    rig = await SyncRig.start(work.path);
    await rig.grove.sdk.orgs.create({ name: ORG });
    credentialId = await rig.credential(ORG);
  });

  after(async () => {
    await rig.close();
    await work[Symbol.asyncDispose]();
  });

  it('imports every branch and tag with the whole history and the remote default branch, and no refs/pull/*', async () => {
    await remoteWithHistory('big');
    const started = await rig.ok('POST', `/orgs/${ORG}/repos`, { name: 'big', import: { url: rig.remote.repoUrl('big'), credentialId } }, 202);
    assert.equal(started.import.status, 'importing');
    const done = await finished(started.import.id);
    assert.equal(done.status, 'succeeded', JSON.stringify(done));
    assert.equal(done.progress, 100);
    assert.equal(done.refs, 3);
    const remote = await rig.lsRemote(rig.remote.authedUrl('big'));
    remote.delete('refs/pull/1/head');
    assert.deepEqual(await rig.lsRemote(rig.groveUrl(ORG, 'big')), remote);
    assert.equal((await rig.ok('GET', `/repos/${ORG}/big`)).defaultBranch, 'trunk');
    await using clone = await tempDir();
    await gitOk(['clone', '-q', '--mirror', rig.groveUrl(ORG, 'big'), clone.path]);
    assert.equal((await gitOk(['rev-list', '--count', '--all'], { cwd: clone.path })).trim(), '12');
    await gitOk(['fsck', '--strict'], { cwd: clone.path });
    assert.equal((await rig.ok('GET', `/repos/${ORG}/big/upstreams`)).items.length, 0, 'a plain import keeps no upstream');
  });

  it('tells a git client the repository is being imported, with its progress', async () => {
    await remoteWithHistory('slow');
    rig.remote.uploadDelayMs = 1_500;
    try {
      const started = await rig.ok('POST', `/orgs/${ORG}/repos`, { name: 'slow', import: { url: rig.remote.repoUrl('slow'), credentialId } }, 202);
      const clone = await git(['ls-remote', rig.groveUrl(ORG, 'slow')]);
      assert.notEqual(clone.code, 0);
      assert.match(clone.stderr, /repository acme\/slow is being imported \(\d+%\)/);
      assert.equal((await finished(started.import.id)).status, 'succeeded');
    } finally {
      rig.remote.uploadDelayMs = 0;
    }
    assert.equal((await git(['ls-remote', rig.groveUrl(ORG, 'slow')])).code, 0);
  });

  it('removes the repository when the import fails, keeps the reason, and frees the name', async () => {
    await remoteWithHistory('broken');
    const wrong = await rig.ok('POST', `/orgs/${ORG}/credentials`, { name: 'wrong-import', kind: 'basic', username: REMOTE_USER, secret: 'tok_not_the_right_one' }, 201);
    const started = await rig.ok('POST', `/orgs/${ORG}/repos`, { name: 'broken', import: { url: rig.remote.repoUrl('broken'), credentialId: wrong.id } }, 202);
    const done = await finished(started.import.id);
    assert.equal(done.status, 'failed');
    assert.equal(done.error.code, 'credential_rejected');
    assert.equal((await rig.api('GET', `/repos/${ORG}/broken`)).status, 404);
    const again = await rig.ok('POST', `/orgs/${ORG}/repos`, { name: 'broken', import: { url: rig.remote.repoUrl('broken'), credentialId } }, 202);
    assert.equal((await finished(again.import.id)).status, 'succeeded');
    const objects = path.join(rig.grove.server.repos.gitDir((await rig.ok('GET', `/repos/${ORG}/broken`)).id), 'objects');
    assert.deepEqual((await readdir(objects)).filter((n) => n.startsWith('incoming-')), [], 'no staging repository left behind');
  });

  it('refuses an import from a private address, a URL with credentials, or with a fork source, creating nothing', async () => {
    const cases: [unknown, number, RegExp][] = [
      [{ name: 'x1', import: { url: 'http://10.0.0.1/a.git' } }, 422, /private or reserved/],
      [{ name: 'x2', import: { url: 'http://u:p@127.0.0.1/a.git' } }, 400, /credentials/],
      [{ name: 'x3', import: { url: rig.remote.repoUrl('big'), credentialId: 'cred_missing' } }, 422, /no credential/],
      [{ name: 'x4', from: `${ORG}/big`, import: { url: rig.remote.repoUrl('big') } }, 400, /either a fork/],
    ];
    for (const [body, status, message] of cases) {
      const answer = await rig.api('POST', `/orgs/${ORG}/repos`, body);
      assert.equal(answer.status, status, JSON.stringify(body));
      assert.match(answer.json.error.message, message);
      assert.equal((await rig.api('GET', `/repos/${ORG}/${(body as { name: string }).name}`)).status, 404);
    }
  });

  it('imports as a read-only mirror that keeps following the remote', async () => {
    const tree = await remoteWithHistory('followed');
    const started = await rig.ok('POST', `/orgs/${ORG}/repos`, { name: 'followed', import: { url: rig.remote.repoUrl('followed'), credentialId, mirror: true } }, 202);
    assert.ok(started.import.webhook.secret.startsWith('whsec_'));
    assert.equal((await finished(started.import.id)).status, 'succeeded');
    const upstream = await rig.ok('GET', `/repos/${ORG}/followed/upstreams/origin`);
    assert.equal(upstream.readOnly, true);
    assert.equal(upstream.status.state, 'active');
    const first = await rig.sync(ORG, 'followed');
    assert.deepEqual(first.counts, { unchanged: 3 }, 'the import wrote the tracking refs: nothing to fetch');
    const next = await tree.commit();
    const pushed = await rig.pushToGrove(tree.dir, ORG, 'followed', ['HEAD:refs/heads/trunk']);
    assert.match(pushed.stderr, /this repository mirrors/);
    await rig.pushToRemote(tree.dir, 'followed', ['HEAD:refs/heads/trunk']);
    const run = await rig.sync(ORG, 'followed');
    assert.equal(run.refs[0].outcome, 'updated');
    assert.equal((await rig.lsRemote(rig.groveUrl(ORG, 'followed'))).get('refs/heads/trunk'), next);
  });
});
