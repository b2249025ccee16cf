/**
 * Randomized bidirectional races between remote sync and the clients of both sides, over
 * four branches of one repository: agents pushing to Grove (fast-forwards, pushes git refuses
 * as non-fast-forward, force pushes), a human pushing to the remote (fast-forwards and force
 * pushes), manual runs (some waited for, some not), polls (some awaited, some not) and the
 * push-forward runs Grove queues by itself — often two or three of them at once. One
 * upstream pulls and pushes every branch under onDivergence overwrite (the most dangerous
 * setting), another under skip; the two play at once. A seeded PRNG drives each; the seed
 * is printed, and GROVE_RACE_SEED replays the same steps (not the timing of the races they
 * make, nor the tips a client reads; GROVE_RACE_STEPS: the number of steps;
 * GROVE_RACE_LOG=<file>: every step of a failed scenario is written there).
 *
 * At the end everything settles (the work in flight, the queued runs, then runs until one
 * changes nothing), and then:
 *
 * - nothing acknowledged is lost (below);
 * - no loops: two more runs change nothing (under overwrite: every ref `unchanged`; under
 *   skip a branch left diverged is reported again, which changes nothing), a quiet 2 s window
 *   creates no run, and a poll starts none under overwrite (under skip only runs that change
 *   nothing: a diverged branch keeps its tracking ref, so the poll sees a difference);
 * - no run failed, and the upstream is still active.
 *
 * The accounting. Every commit in the game is made by the test (a sync never makes one) and
 * pushed once, to one branch of one side; it is *acknowledged* there when git reports the
 * ref accepted (porcelain flag ' ', '+' or '*'). A side may legitimately lose only what its
 * own client threw away: when a force push is accepted, git names the tip it replaced
 * (`old...new (forced update)`), and the commits that push took off the branch,
 * `git rev-list <old> --not <new>`, lose their acknowledgement on that branch of that side.
 * Nothing else is released: a commit dropped from one branch but acknowledged on another, or
 * an ancestor of anything that must survive, is still checked (reachability covers
 * ancestors). What a run carried to the other side (its report says it pulled or pushed that
 * commit) must survive too, unless a force push on that other side dropped it as well.
 *
 * Then every commit Grove acknowledged must be reachable from a ref of the Grove repository
 * on disk, hidden refs (tracking, backups) included: when the remote wins an overwrite, the
 * backup ref keeps it. The remote's acknowledged commits and the carried ones must be
 * reachable in Grove or on the remote (under skip a diverged branch keeps the human's
 * commit on the remote only).
 */
import { describe, it, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { git, gitOk, tempDir } from './helpers/git.ts';
import { onClusterOfOne } from './helpers/database.ts';
import { SyncRig } from './helpers/sync-rig.ts';

const ORG = 'races';
const BRANCHES = ['main', 'feature', 'agent/one', 'agent/two'] as const;
const STEPS = Number(process.env.GROVE_RACE_STEPS ?? 200);
const SEED = process.env.GROVE_RACE_SEED === undefined ? randomInt(2 ** 31) : Number(process.env.GROVE_RACE_SEED);
if (!Number.isSafeInteger(SEED) || !Number.isSafeInteger(STEPS)) throw new Error('GROVE_RACE_SEED and GROVE_RACE_STEPS must be integers');
const CHANGED = ['created', 'updated', 'forced', 'deleted'] as const;
const UNSETTLED = [...CHANGED, 'stale', 'failed', 'rejected'] as const;

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Porcelain {
  /** Git reported the ref accepted. */
  readonly ok: boolean;
  /** The tip a forced update replaced. */
  readonly replaced: string | null;
  readonly summary: string;
}

/** The one ref line of `git push --porcelain` (with core.abbrev=40, so ids are whole). */
function porcelain(stdout: string, ref: string): Porcelain | null {
  for (const line of stdout.split('\n')) {
    const match = /^([ +\-*=!])\t([^\t]*)\t(.*)$/.exec(line);
    if (!match || !match[2]!.endsWith(`:${ref}`)) continue;
    const [, flag, , summary] = match as unknown as [string, string, string, string];
    const forced = flag === '+' ? /^([0-9a-f]{40})\.\.\.[0-9a-f]{40}/.exec(summary) : null;
    return { ok: flag !== '!', replaced: forced?.[1] ?? null, summary };
  }
  return null;
}

type Side = 'grove' | 'remote';

/** Acknowledged commits of one side: oid → the branches whose acknowledgement still stands. */
class Acks {
  readonly byOid = new Map<string, Set<string>>();
  /** Commits a force push of this side's client took off a branch (any branch). */
  readonly dropped = new Set<string>();

  ack(oid: string, branch: string): void {
    let branches = this.byOid.get(oid);
    if (branches === undefined) this.byOid.set(oid, (branches = new Set()));
    branches.add(branch);
  }

  release(oid: string, branch: string): void {
    this.byOid.get(oid)?.delete(branch);
    this.dropped.add(oid);
  }

  standing(): string[] {
    return [...this.byOid].filter(([, branches]) => branches.size > 0).map(([oid]) => oid);
  }
}

interface ScenarioOptions {
  readonly name: string;
  readonly onDivergence: 'overwrite' | 'skip';
  /** GROVE_RACE_SEED's value; each scenario draws its own stream from it. */
  readonly seed: number;
  readonly stream: number;
  readonly steps: number;
}

// The two scenarios run at once (their own repositories, one server): more races, half the time.
describe('remote sync under randomized bidirectional races', { concurrency: true }, () => {
  let work: Awaited<ReturnType<typeof tempDir>>;
  let rig: SyncRig;
  let credentialId: string;

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

  async function scenario(t: TestContext, options: ScenarioOptions): Promise<void> {
    const log: string[] = [];
    t.diagnostic(`GROVE_RACE_SEED=${options.seed} replays this (${options.steps} steps)`);
    try {
      await play(t, options, log);
    } catch (error) {
      if (process.env.GROVE_RACE_LOG !== undefined) await writeFile(process.env.GROVE_RACE_LOG, `${log.join('\n')}\n`);
      const tail = log.slice(-60).join('\n');
      // The reporter prints the stack (which starts with the message): the seed goes first, the steps last.
      if (error instanceof Error) error.stack = `GROVE_RACE_SEED=${options.seed}: ${error.stack}\n--- the last ${Math.min(60, log.length)} of ${log.length} steps:\n${tail}`;
      throw error;
    }
  }

  async function play(t: TestContext, { name, onDivergence, seed, stream, steps }: ScenarioOptions, log: string[]): Promise<void> {
    const random = prng(seed + stream * 0x9e3779b9);
    // Each step draws from a stream of its own, so steps running at once draw the same choices
    // whatever order they reach them in.
    const dice = () => {
      const own = prng(Math.floor(random() * 2 ** 32));
      return { pick: <T>(items: readonly T[]): T => items[Math.floor(own() * items.length)]!, chance: (p: number) => own() < p };
    };
    type Dice = ReturnType<typeof dice>;
    const note = (line: string) => log.push(`${String(log.length + 1).padStart(3)} ${line}`);
    const short = (oid: string | null | undefined) => (oid == null ? '-' : oid.slice(0, 8));

    // All commits are made in one bare client repository (empty trees, unique messages), so
    // either side's client can base a commit on anything either side ever held.
    const client = path.join(work.path, `${name}-client.git`);
    await mkdir(client, { recursive: true });
    await gitOk(['init', '-q', '--bare', client]);
    const tree = (await gitOk(['--git-dir', client, 'mktree'], { input: '' })).trim();
    let made = 0;
    const commit = async (who: string, parents: readonly string[]) =>
      (await gitOk(['--git-dir', client, 'commit-tree', tree, ...parents.flatMap((p) => ['-p', p]), '-m', `${who} ${++made} (seed ${seed})`])).trim();

    const remoteUrl = rig.remote.authedUrl(name);
    await rig.remote.createRepo(name);
    const groveUrl = rig.groveUrl(ORG, name);
    const acks: Record<Side, Acks> = { grove: new Acks(), remote: new Acks() };
    /** Every value a branch was seen to have on each side: the bases of later commits. */
    const seen: Record<Side, string[]> = { grove: [], remote: [] };

    const root = await commit('human', []);
    await gitOk(['--git-dir', client, 'push', '-q', remoteUrl, `${root}:refs/heads/main`]);
    acks.remote.ack(root, 'main');
    seen.remote.push(root);
    await rig.grove.createRepo(ORG, name);
    const upstream = await rig.attach(ORG, name, rig.remote.repoUrl(name), {
      credentialId,
      rules: [{ refs: 'refs/heads/**', direction: 'both', onDivergence, deletions: 'ignore' }],
      pushForward: true,
    });
    seen.grove.push(root);
    const route = `/repos/${ORG}/${name}/upstreams/origin`;

    const tipOf = async (side: Side, branch: string): Promise<string | null> => {
      const out = await gitOk(['ls-remote', side === 'grove' ? groveUrl : remoteUrl, `refs/heads/${branch}`]);
      const oid = out.split('\t')[0]?.trim() || null;
      if (oid !== null) seen[side].push(oid);
      return oid;
    };

    /** A client of `side` pushes a new commit to `branch` (force: `+`); the acknowledgement is recorded. */
    const push = async ({ pick, chance }: Dice, side: Side, force: boolean) => {
      const branch = pick(BRANCHES);
      const ref = `refs/heads/${branch}`;
      // Half the time the client fetched first (mostly a fast-forward, unless someone races
      // it), and then now and then merges the other side's tip too (a hand-made resolution
      // of a divergence); otherwise it builds on some earlier tip it saw (mostly refused
      // without force), now and then one it saw on the other side.
      const other: Side = side === 'grove' ? 'remote' : 'grove';
      const fresh = !force && chance(0.5) ? await tipOf(side, branch) : null;
      const base = fresh ?? pick(seen[chance(0.2) ? other : side]);
      const merged = fresh !== null && chance(0.3) ? await tipOf(other, branch) : null;
      const parents = merged === null || merged === base ? [base] : [base, merged];
      const oid = await commit(side === 'grove' ? 'agent' : 'human', parents);
      const url = side === 'grove' ? groveUrl : remoteUrl;
      const result = await git(['-c', 'core.abbrev=40', '--git-dir', client, 'push', '--porcelain', url, `${force ? '+' : ''}${oid}:${ref}`]);
      const line = porcelain(result.stdout, ref);
      const who = side === 'grove' ? 'agent pushes to Grove' : 'human pushes to the remote';
      const on = parents.map(short).join('+');
      if (line === null || !line.ok) {
        // A refusal is a normal one (non-fast-forward, or the ref moved since git read it), never a server error.
        assert.doesNotMatch(result.stdout + result.stderr, side === 'grove' ? /HTTP 5\d\d|internal error|cannot lock|\.lock/ : /HTTP 5\d\d/, `${who}: ${result.stdout}${result.stderr}`);
        note(`${who}${force ? ' (force)' : ''} ${branch} ${short(oid)} on ${on}: refused (${line?.summary ?? result.stderr.trim().split('\n').pop()})`);
        return;
      }
      acks[side].ack(oid, branch);
      seen[side].push(oid);
      if (line.replaced !== null) {
        // What the force push took off the branch: the replaced tip and its history the new tip lacks.
        const dropped = (await gitOk(['--git-dir', client, 'rev-list', line.replaced, '--not', oid])).split('\n').filter((l) => l !== '');
        for (const gone of dropped) acks[side].release(gone, branch);
      }
      note(`${who}${force ? ' (force)' : ''} ${branch} ${short(oid)} on ${on}: accepted${line.replaced !== null ? `, replacing ${short(line.replaced)}` : ''}`);
    };

    const background: Promise<unknown>[] = [];

    const waitRun = async (id: string): Promise<any> => {
      const deadline = Date.now() + 60_000;
      // The run's row, not the API, is polled: cheaper for a server that is busy racing.
      for (;;) {
        const row = await rig.grove.server.db.selectFrom('sync_runs').select('status').where('id', '=', id).executeTakeFirstOrThrow();
        if (row.status !== 'queued' && row.status !== 'running') return rig.ok('GET', `${route}/syncs/${id}`);
        assert.ok(Date.now() < deadline, `run ${id} finished within 60 s`);
        await delay(25);
      }
    };

    const sync = async ({ chance }: Dice) => {
      const wait = chance(0.4);
      const run = await rig.ok('POST', `${route}/syncs`, { direction: 'both' }, 202);
      if (!wait) {
        note(`sync run ${run.id} queued (not waited for)`);
        return;
      }
      const done = await waitRun(run.id);
      note(`sync run ${run.id} ${done.status}: ${JSON.stringify(done.counts)}`);
    };

    const poll = async ({ chance }: Dice) => {
      const work = rig.grove.server.sync.pollNow(upstream.id);
      if (chance(0.5)) {
        background.push(work);
        note('poll (not awaited)');
      } else {
        await work;
        note('poll');
      }
    };

    const spent = new Map<string, { n: number; ms: number }>();
    const timed = async (kind: string, work: () => Promise<void>) => {
      const started = performance.now();
      await work();
      const entry = spent.get(kind) ?? { n: 0, ms: 0 };
      spent.set(kind, { n: entry.n + 1, ms: entry.ms + performance.now() - started });
    };
    const step = () => {
      const r = random();
      const own = dice();
      if (r < 0.35) return timed('agent push', () => push(own, 'grove', false));
      if (r < 0.43) return timed('agent force push', () => push(own, 'grove', true));
      if (r < 0.6) return timed('human push', () => push(own, 'remote', false));
      if (r < 0.68) return timed('human force push', () => push(own, 'remote', true));
      if (r < 0.88) return timed('sync', () => sync(own));
      return timed('poll', () => poll(own));
    };

    for (let done = 0; done < steps;) {
      const r = random();
      const width = Math.min(steps - done, r < 0.3 ? 1 : r < 0.7 ? 2 : 3);
      if (width > 1) note(`-- ${width} steps at once:`);
      await Promise.all(Array.from({ length: width }, step));
      done += width;
    }

    t.diagnostic(`steps: ${[...spent].map(([kind, { n, ms }]) => `${n} × ${kind} (${Math.round(ms / n)} ms)`).join(', ')}`);

    // Settle: the pushes and polls in flight, a push-forward's debounce, every queued run;
    // then runs until one changes nothing.
    for (const settled of await Promise.allSettled(background)) if (settled.status === 'rejected') throw settled.reason;
    await delay(400);
    await rig.idle(upstream.id);
    const changes = (run: any) => Object.keys(run.counts).filter((k) => (UNSETTLED as readonly string[]).includes(k));
    let settled = false;
    for (let i = 0; i < 6 && !settled; i++) {
      const run = await rig.sync(ORG, name, { direction: 'both' });
      note(`settling run ${run.id} ${run.status}: ${JSON.stringify(run.counts)}`);
      settled = changes(run).length === 0;
    }
    // Then two more runs, and a quiet window with no push at all.
    const checks: any[] = [];
    for (let i = 0; i < 2; i++) {
      const run = await rig.sync(ORG, name, { direction: 'both' });
      note(`check run ${run.id} ${run.status}: ${JSON.stringify(run.counts)}`);
      checks.push(run);
    }
    const db = rig.grove.server.db;
    const countRuns = async () => Number((await db.selectFrom('sync_runs').select((eb) => eb.fn.countAll().as('n')).where('upstream_id', '=', upstream.id).executeTakeFirstOrThrow()).n);
    const quietBefore = await countRuns();
    await delay(2_000);
    const quietRuns = (await countRuns()) - quietBefore;
    // And a poll: under overwrite everything agrees, so it starts no run; under skip a branch
    // left diverged keeps its tracking ref, so a poll may start a run, which must change nothing.
    const runsOf = () => db.selectFrom('sync_runs').selectAll().where('upstream_id', '=', upstream.id).execute();
    const beforePoll = new Set((await runsOf()).map((r) => r.id));
    await rig.grove.server.sync.pollNow(upstream.id);
    await rig.idle(upstream.id);
    const runs = await runsOf();
    const pollRuns = runs.filter((r) => !beforePoll.has(r.id));
    for (const run of pollRuns) note(`poll run ${run.id} ${run.status}: ${run.counts}`);

    // What the runs carried across: a released commit they had carried must survive on the other side.
    const carried: Record<Side, Set<string>> = { grove: new Set(), remote: new Set() };
    const outcomes = new Map<string, number>();
    for (const run of runs) {
      for (const report of JSON.parse(run.refs) as { side: 'pull' | 'push'; outcome: string; after: string | null; upstream: string | null }[]) {
        const key = `${report.side} ${report.outcome}`;
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        if (!(CHANGED as readonly string[]).includes(report.outcome)) continue;
        if (report.side === 'pull' && report.after !== null) carried.grove.add(report.after);
        if (report.side === 'push' && report.upstream !== null) carried.remote.add(report.upstream);
      }
    }
    const triggers = new Map<string, number>();
    for (const run of runs) triggers.set(run.trigger, (triggers.get(run.trigger) ?? 0) + 1);
    t.diagnostic(`${runs.length} runs (${[...triggers].map(([trigger, n]) => `${n} ${trigger}`).join(', ')}); per-ref outcomes: ${[...outcomes].sort().map(([o, n]) => `${n} ${o}`).join(', ')}`);

    // Reachability, on disk: Grove's refs with the hidden ones (tracking, backups), and the remote's.
    const repoRow = await rig.grove.sdk.repos.get(ORG, name);
    const gitDir = rig.grove.server.repos.gitDir(repoRow.id);
    const groveRefs = await rig.groveRefs(ORG, name);
    if (onClusterOfOne) {
      // PostgreSQL holds the truth in a cluster: the copy on disk must say the same.
      const truth = await db.selectFrom('repo_refs').select(['name', 'oid']).where('repo_id', '=', repoRow.id).execute();
      assert.deepEqual(new Map(truth.map((r) => [r.name, r.oid])), groveRefs, "the repository's copy on disk has PostgreSQL's refs");
    }
    const reachable = async (dir: string) => new Set((await gitOk(['--git-dir', dir, 'rev-list', '--all'])).split('\n').filter((l) => l !== ''));
    const inGrove = await reachable(gitDir);
    const onRemote = await reachable(rig.remote.gitDir(name));
    const groveMust = acks.grove.standing();
    const eitherMust = new Set([
      ...acks.remote.standing(),
      ...[...carried.remote].filter((oid) => !acks.remote.dropped.has(oid)),
      ...[...carried.grove].filter((oid) => !acks.grove.dropped.has(oid)),
    ]);
    const refsNow = `\nGrove: ${JSON.stringify(Object.fromEntries(groveRefs))}\nremote: ${JSON.stringify(Object.fromEntries(await rig.lsRemote(remoteUrl)))}`;
    t.diagnostic(`checked ${groveMust.length} commits in Grove and ${eitherMust.size} on either side; ${[...groveRefs.keys()].filter((r) => r.startsWith('refs/grove/backups/')).length} backup refs`);
    assert.deepEqual(groveMust.filter((oid) => !inGrove.has(oid)), [], `every commit Grove acknowledged is reachable from a ref in Grove${refsNow}`);
    assert.deepEqual([...eitherMust].filter((oid) => !inGrove.has(oid) && !onRemote.has(oid)), [], `every commit the remote acknowledged, or a run carried across, is reachable on one side${refsNow}`);

    // Every run finished, none failed, the upstream was never paused, and nothing loops.
    assert.deepEqual(runs.filter((r) => r.status === 'failed').map((r) => `${r.id} (${r.trigger}): ${r.error_code} ${r.error_message}`), [], 'no run failed');
    assert.deepEqual(runs.filter((r) => r.status === 'queued' || r.status === 'running').map((r) => r.id), [], 'every run finished');
    const shown = await rig.ok('GET', route);
    assert.equal(shown.status.state, 'active', `the upstream is active: ${JSON.stringify(shown.status)}`);
    assert.ok(settled, 'the sync settles within six runs');
    for (const run of checks) {
      assert.deepEqual(changes(run), [], `a run after settling changes nothing: ${JSON.stringify(run.refs)}`);
      // Under skip, a branch both sides changed is reported `diverged` run after run: a report, not a change.
      const allowed = onDivergence === 'overwrite' ? ['unchanged'] : ['unchanged', 'diverged'];
      assert.deepEqual(Object.keys(run.counts).filter((k) => !allowed.includes(k)), [], `only ${allowed.join(' or ')} refs after settling: ${JSON.stringify(run.refs)}`);
    }
    assert.equal(quietRuns, 0, 'no run is created in a quiet 2 s window');
    if (onDivergence === 'overwrite') assert.equal(pollRuns.length, 0, `a poll after settling starts no run: ${JSON.stringify(pollRuns)}`);
    for (const run of pollRuns) assert.deepEqual(changes({ counts: JSON.parse(run.counts) }), [], `a poll's run after settling changes nothing: ${run.refs}`);
  }

  it(`keeps every acknowledged commit reachable and settles without loops when both sides race under onDivergence overwrite (${STEPS} steps)`, async (t) => {
    await scenario(t, { name: 'overwrite', onDivergence: 'overwrite', seed: SEED, stream: 0, steps: STEPS });
  });

  it(`keeps every acknowledged commit reachable and settles without loops when both sides race under onDivergence skip (${STEPS} steps)`, async (t) => {
    await scenario(t, { name: 'skip', onDivergence: 'skip', seed: SEED, stream: 1, steps: STEPS });
  });
});
