/**
 * The remote-sync commands of the grove CLI (`credential`, `upstream`, `sync`) against a real
 * server and a real git remote on loopback (git http-backend with Basic auth): secrets only
 * from stdin and never printed, rules from repeatable flags in order, runs followed to their
 * end with one line per ref and exit codes 0 / 2 / 1, and the API's refusals on one stderr line.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { ROOT, GROVE_BIN, COMPILE_CACHE, grove, json, silent, type CliRun } from './helpers/cli.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { GitRemote } from './helpers/git-remote.ts';
import { commitFile, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';

const ORG = 'acme';
const REMOTE_USER = 'sync';
const REMOTE_TOKEN = 'tok_cli_remote_3f9a1c7e5b';
/** util-linux script(1) gives a command a pseudo-terminal as its stdin. */
const HAS_SCRIPT = spawnSync('script', ['--version']).status === 0;

/** Runs the CLI with `input` on stdin (closed right away when undefined). */
function groveIn(args: readonly string[], env: Record<string, string>, input?: string): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [GROVE_BIN, ...args], { cwd: ROOT, env: { PATH: process.env.PATH, NODE_COMPILE_CACHE: COMPILE_CACHE, ...env }, encoding: 'utf8', timeout: 30_000 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') return reject(error);
      resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
    child.stdin?.on('error', () => {});
    child.stdin?.end(input ?? '');
  });
}

function fingerprint(secret: string): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, 8);
}

describe('grove credential, upstream and sync commands', () => {
  let server: TestServer;
  let remote: GitRemote;
  let env: Record<string, string>;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let credentialId: string;
  let counter = 0;
  const dir = (name: string) => path.join(work.path, `${name}-${++counter}`);

  /** A remote repository with main (and `branches`) at one commit, an empty Grove repository of the same name, and the work tree. */
  async function pair(branches: readonly string[] = []): Promise<{ name: string; url: string; tree: string }> {
    const name = `app-${++counter}`;
    const url = await remote.createRepo(name);
    const tree = dir('tree');
    await initWorkRepo(tree);
    await commitFile(tree, 'README.md', `# ${name}\n`, 'initial commit');
    await gitOk(['push', '-q', remote.authedUrl(name), 'HEAD:refs/heads/main', ...branches.map((b) => `HEAD:refs/heads/${b}`)], { cwd: tree });
    await server.createRepo(ORG, name);
    return { name, url, tree };
  }

  /** Attaches `url` as origin with the CLI and waits (in the server) for the run it queued; the upstream as JSON. */
  async function attach(name: string, url: string, flags: readonly string[] = []): Promise<any> {
    const upstream = json(await grove(['upstream', 'set', `${ORG}/${name}`, url, '--credential', credentialId, '--json', ...flags], env));
    await server.server.sync.idle(upstream.id);
    return upstream;
  }

  function groveUrl(name: string): string {
    return `${server.url.replace('http://', `http://x:${server.token}@`)}/${ORG}/${name}.git`;
  }

  before(async () => {
    server = await startTestServer({ GROVE_ALLOWED_OUTBOUND: '127.0.0.1', GROVE_ALLOW_INSECURE_REMOTES: 'true', GROVE_SYNC_POLL_SECONDS: '3600' });
    remote = await GitRemote.start();
    remote.tokens.set(REMOTE_USER, REMOTE_TOKEN);
    env = { GROVE_URL: server.url, GROVE_TOKEN: server.token };
    work = await tempDir('grove-sync-cli-');
    await server.sdk.orgs.create({ name: ORG });
    const added = await groveIn(['credential', 'add', ORG, '--name', 'remote-bot', '--kind', 'basic', '--username', REMOTE_USER], env, `${REMOTE_TOKEN}\n`);
    credentialId = json(added).id;
  });
  after(async () => {
    await server.close();
    await remote.close();
    await work[Symbol.asyncDispose]();
  });

  describe('credential', () => {
    it('adds a credential with the secret from stdin (one trailing newline dropped), and never prints the secret', async () => {
      const secret = 'ghp_cli_secret_9d8c7b6a5f4e';
      const added = await groveIn(['credential', 'add', ORG, '--name', 'github', '--expires-at', '2031-01-01T00:00:00.000Z'], env, `${secret}\n`);
      const credential = json(added);
      assert.match(credential.id, /^cred_/);
      assert.equal(credential.name, 'github');
      assert.equal(credential.kind, 'token');
      assert.equal(credential.username, 'x-access-token');
      assert.equal(credential.fingerprint, fingerprint(secret), 'the fingerprint is of the secret without its newline');
      assert.equal(credential.status, 'ok');
      assert.equal(credential.expiresAt, '2031-01-01T00:00:00.000Z');
      assert.ok(!('secret' in credential));

      const [list, show] = await Promise.all([grove(['credential', 'list', ORG], env), grove(['credential', 'show', ORG, credential.id], env)]);
      const listed = json(list);
      assert.deepEqual(listed.map((c: { name: string }) => c.name), ['github', 'remote-bot']);
      assert.deepEqual(json(show), credential);
      for (const run of [added, list, show]) {
        assert.ok(!run.stdout.includes(secret) && !run.stderr.includes(secret), 'the secret in the output');
        assert.ok(!run.stdout.includes(REMOTE_TOKEN), 'the remote token in the output');
      }
    });

    it('has no way to take a secret from argv: no --secret option, and a secret as an argument is refused without being repeated', async () => {
      const help = await grove(['credential', 'add', '--help'], env);
      assert.equal(help.code, 0);
      assert.doesNotMatch(help.stdout, /--secret|--password|--token/);
      assert.match(help.stdout, /read from stdin/);
      const secret = 'argv_secret_0a1b2c3d';
      const runs = await Promise.all([
        groveIn(['credential', 'add', ORG, '--name', 'argv-1', `--secret=${secret}`], env, 'x\n'),
        groveIn(['credential', 'add', ORG, '--name', 'argv-2', '--secret', secret], env, 'x\n'),
        groveIn(['credential', 'add', ORG, secret, '--name', 'argv-3'], env, 'x\n'),
        groveIn(['credential', 'rotate', ORG, credentialId, secret], env, 'x\n'),
      ]);
      for (const run of runs) {
        assert.equal(run.code, 1, run.stderr);
        assert.equal(run.stdout, '');
        assert.match(run.stderr, /^error: (unknown option|too many arguments) \(not repeated here\): secrets are read from stdin only/);
        assert.ok(!run.stderr.includes(secret), `the secret repeated: ${run.stderr}`);
      }
      const names = (await server.sdk.credentials.list(ORG)).map((c) => c.name);
      assert.ok(!names.some((n) => n.startsWith('argv-')), `created: ${names.join(', ')}`);
    });

    it('refuses an empty stdin with a clear message', async () => {
      const [empty, newline] = await Promise.all([
        groveIn(['credential', 'add', ORG, '--name', 'empty'], env, ''),
        groveIn(['credential', 'add', ORG, '--name', 'empty'], env, '\n'),
      ]);
      for (const run of [empty, newline]) {
        assert.equal(run.code, 1);
        assert.equal(run.stdout, '');
        assert.equal(run.stderr, 'grove: no secret on stdin: pipe the token or password to `grove credential add acme --name empty`\n');
      }
      assert.ok(!(await server.sdk.credentials.list(ORG)).some((c) => c.name === 'empty'));
    });

    it('refuses to read a secret from a terminal', { skip: HAS_SCRIPT ? false : 'script(1) is not installed' }, async () => {
      const tty = await new Promise<CliRun>((resolve) => {
        const command = `"${process.execPath}" "${GROVE_BIN}" credential add ${ORG} --name tty`;
        const child = execFile('script', ['-qec', command, '/dev/null'], { cwd: ROOT, env: { PATH: process.env.PATH, NODE_COMPILE_CACHE: COMPILE_CACHE, ...env }, encoding: 'utf8', timeout: 30_000 }, (error, stdout, stderr) =>
          resolve({ code: error ? (error.code as number) : 0, stdout, stderr }));
        child.stdin?.end();
      });
      assert.equal(tty.code, 1, tty.stdout + tty.stderr);
      assert.match(tty.stdout, /grove: refusing to read the secret from a terminal: pipe it to stdin/);
      assert.ok(!(await server.sdk.credentials.list(ORG)).some((c) => c.name === 'tty'));
    });

    it('reports a basic credential without --username and a duplicate name', async () => {
      const [basic, duplicate] = await Promise.all([
        groveIn(['credential', 'add', ORG, '--name', 'b', '--kind', 'basic'], env, 'pw\n'),
        groveIn(['credential', 'add', ORG, '--name', 'remote-bot'], env, 'pw\n'),
      ]);
      assert.equal(basic.code, 1);
      assert.equal(basic.stderr, 'grove: a basic credential needs --username\n');
      assert.equal(duplicate.code, 1);
      assert.equal(duplicate.stderr, 'grove: already_exists: org acme already has a credential named remote-bot\n');
    });
  });

  describe('upstream set and sync', () => {
    it('sets an upstream (printing the webhook URL and secret only when it creates it), then `sync --wait` prints the refs it created and exits 0', async () => {
      const { name, url, tree } = await pair(['feature']);
      const set = await grove(['upstream', 'set', `${ORG}/${name}`, url, '--credential', credentialId], env);
      assert.equal(set.code, 0, set.stderr);
      assert.equal(set.stderr, '');
      assert.match(set.stdout, new RegExp(`^upstream origin of ${ORG}/${name}: ${url.replace(/[.]/g, '\\.')}\n`));
      assert.match(set.stdout, /^ {4}pull  refs\/heads\/\*\*  \(on divergence skip, deletions ignore\)$/m);
      assert.match(set.stdout, /^ {2}sync run: {5}(sync_\w+) queued/m);
      const hook = /^ {2}url: {10}(\S+)\n {2}secret: {7}(whsec_\S+)$/m.exec(set.stdout);
      assert.ok(hook, set.stdout);
      const upstream = await server.sdk.upstreams.get(ORG, name, 'origin');
      assert.equal(hook[1], `${server.url}/api/v1/hooks/upstreams/${upstream.id}`, 'an absolute URL the remote can call');
      assert.ok(!set.stdout.includes(REMOTE_TOKEN));
      await server.server.sync.idle(upstream.id);

      // The run set queued brought main and feature.
      const firstRun = /sync run: +(\S+)/.exec(set.stdout)![1]!;
      const first = await grove(['sync', 'show', `${ORG}/${name}`, firstRun], env);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /^created {3}refs\/heads\/feature {2}0000000 → [0-9a-f]{7}$/m);
      assert.match(first.stdout, /^created {3}refs\/heads\/main {5}0000000 → [0-9a-f]{7}$/m);
      assert.match(first.stdout, new RegExp(`^succeeded: 2 created \\(run ${firstRun}, both, manual, [0-9.]+ s\\)$`, 'm'));

      // A new branch and a tag on the remote: `grove sync <org/repo> --wait` (the default command) creates them.
      const tip = await commitFile(tree, 'next.txt', 'next\n', 'next');
      await gitOk(['tag', 'v1'], { cwd: tree });
      await gitOk(['push', '-q', remote.authedUrl(name), 'HEAD:refs/heads/release', 'refs/tags/v1'], { cwd: tree });
      const synced = await grove(['sync', `${ORG}/${name}`, '--wait'], env);
      assert.equal(synced.code, 0, synced.stderr);
      assert.equal(synced.stderr, '');
      const lines = synced.stdout.trimEnd().split('\n');
      assert.deepEqual(lines.slice(0, -1), [
        `created   refs/heads/release  0000000 → ${tip.slice(0, 7)}`,
        `created   refs/tags/v1        0000000 → ${tip.slice(0, 7)}`,
      ]);
      assert.match(lines.at(-1)!, /^succeeded: 2 created, 2 unchanged \(run sync_\w+, both, manual, [0-9.]+ s\)$/);
      assert.equal((await gitOk(['ls-remote', groveUrl(name), 'refs/heads/release'])).split('\t')[0], tip);

      // Replacing the configuration prints no webhook secret again; --json is the API answer.
      const again = await grove(['upstream', 'set', `${ORG}/${name}`, url, '--credential', credentialId], env);
      assert.equal(again.code, 0, again.stderr);
      assert.doesNotMatch(again.stdout, /webhook|whsec_|secret/);
      const replaced = json(await grove(['upstream', 'set', `${ORG}/${name}`, url, '--credential', credentialId, '--json'], env));
      assert.equal(replaced.id, upstream.id);
      assert.equal(replaced.webhook.secret, undefined);
      await server.server.sync.idle(upstream.id);
    });

    it('builds ordered rules from repeatable --pull/--push/--both flags, and reads --mirror, --poll and --no-push-forward', async () => {
      const { name, url } = await pair();
      const upstream = await attach(name, url, ['--push', 'agent/*', '--pull', 'refs/heads/**', '--both', 'shared/**', '--pull', 'refs/tags/*', '--on-divergence', 'overwrite', '--propagate-deletions', '--poll', '120', '--no-push-forward']);
      assert.deepEqual(upstream.rules, [
        { refs: 'refs/heads/agent/*', direction: 'push', onDivergence: 'overwrite', deletions: 'propagate' },
        { refs: 'refs/heads/**', direction: 'pull', onDivergence: 'overwrite', deletions: 'propagate' },
        { refs: 'refs/heads/shared/**', direction: 'both', onDivergence: 'overwrite', deletions: 'propagate' },
        { refs: 'refs/tags/*', direction: 'pull', onDivergence: 'overwrite', deletions: 'propagate' },
      ]);
      assert.equal(upstream.pollIntervalSeconds, 120);
      assert.equal(upstream.pushForward, false);
      assert.equal(upstream.readOnly, false);
      assert.equal(upstream.credentialId, credentialId);
      assert.match(upstream.webhook.secret, /^whsec_/);

      const mirror = json(await grove(['upstream', 'set', `${ORG}/${name}`, url, '--credential', credentialId, '--mirror', '--json'], env));
      assert.equal(mirror.readOnly, true);
      assert.equal(mirror.pushForward, true);
      assert.deepEqual(mirror.rules.map((r: { refs: string; onDivergence: string }) => [r.refs, r.onDivergence]), [['refs/heads/**', 'overwrite'], ['refs/tags/**', 'overwrite']], 'the server defaults for a mirror');
      await server.server.sync.idle(mirror.id);

      const [noRules, badDivergence, badPoll, mirrorPush] = await Promise.all([
        grove(['upstream', 'set', `${ORG}/${name}`, url, '--on-divergence', 'keep'], env),
        grove(['upstream', 'set', `${ORG}/${name}`, url, '--pull', '**', '--on-divergence', 'merge'], env),
        grove(['upstream', 'set', `${ORG}/${name}`, url, '--poll', 'often'], env),
        grove(['upstream', 'set', `${ORG}/${name}`, url, '--credential', credentialId, '--mirror', '--push', '**'], env),
      ]);
      assert.equal(noRules.code, 1);
      assert.match(noRules.stderr, /^grove: --on-divergence and --propagate-deletions apply to the rules: name them with --pull, --push or --both/);
      assert.equal(badDivergence.stderr, 'grove: --on-divergence must be skip, overwrite or keep\n');
      assert.equal(badPoll.stderr, 'grove: --poll must be a whole number of seconds, got "often"\n');
      assert.equal(mirrorPush.code, 1);
      assert.equal(mirrorPush.stderr, 'grove: invalid_request: a read-only mirror only pulls: its rules may not push\n');
    });

    it('exits 2 when a ref diverged, listing it with its message', async () => {
      const { name, url, tree } = await pair();
      await attach(name, url);
      const agent = dir('agent');
      await gitOk(['clone', '-q', groveUrl(name), agent]);
      const agentTip = await commitFile(agent, 'agent.txt', 'agent\n', 'agent work');
      await gitOk(['push', '-q', groveUrl(name), 'HEAD:refs/heads/main'], { cwd: agent });
      const humanTip = await commitFile(tree, 'human.txt', 'human\n', 'human work');
      await gitOk(['push', '-q', remote.authedUrl(name), 'HEAD:refs/heads/main'], { cwd: tree });

      const run = await grove(['sync', 'run', `${ORG}/${name}`, '--pull', '--wait'], env);
      assert.equal(run.code, 2, run.stdout + run.stderr);
      assert.equal(run.stderr, '');
      const lines = run.stdout.trimEnd().split('\n');
      assert.equal(lines.length, 2, run.stdout);
      assert.match(lines[0]!, new RegExp(`^diverged  refs/heads/main  ${agentTip.slice(0, 7)} → ${agentTip.slice(0, 7)} \\(remote ${humanTip.slice(0, 7)}\\)  .*both sides changed`));
      assert.match(lines[1]!, /^partial: 1 diverged \(run sync_\w+, pull, manual, [0-9.]+ s\)$/);

      const dryRun = await grove(['sync', `${ORG}/${name}`, '--pull', '--ref', 'main', '--dry-run', '--wait', '--json'], env);
      assert.equal(dryRun.code, 0, dryRun.stderr);
      const dry = JSON.parse(dryRun.stdout);
      assert.equal(dry.status, 'succeeded', 'a divergence is reported once');
      assert.equal(dry.dryRun, true);
      assert.deepEqual(dry.requestedRefs, ['refs/heads/main']);
    });

    it('lists runs (one line each, paged) and shows one, as text or JSON', async () => {
      const { name, url, tree } = await pair();
      const upstream = await attach(name, url);
      await commitFile(tree, 'more.txt', 'more\n', 'more');
      await gitOk(['push', '-q', remote.authedUrl(name), 'HEAD:refs/heads/main'], { cwd: tree });
      assert.equal((await grove(['sync', `${ORG}/${name}`, '--wait'], env)).code, 0);
      const queued = await grove(['sync', `${ORG}/${name}`, '--push'], env);
      assert.equal(queued.code, 0, queued.stderr);
      const queuedId = /^(?:queued|running|succeeded) (sync_\w+) \(push\): grove sync show acme\/app-\d+ \1$/m.exec(queued.stdout)?.[1];
      assert.ok(queuedId, queued.stdout);
      await server.server.sync.idle(upstream.id);

      const list = await grove(['sync', 'list', `${ORG}/${name}`], env);
      assert.equal(list.code, 0, list.stderr);
      const lines = list.stdout.trimEnd().split('\n');
      assert.equal(lines.length, 3, list.stdout);
      assert.match(lines[0]!, new RegExp(`^${queuedId}  succeeded push manual  \\S+  no refs$`));
      assert.match(lines[1]!, /^sync_\w+  succeeded both manual  \S+  1 updated$/);
      assert.match(lines[2]!, /^sync_\w+  succeeded both manual  \S+  1 created$/);

      const page = json(await grove(['sync', 'list', `${ORG}/${name}`, '--limit', '2', '--json'], env));
      assert.equal(page.items.length, 2);
      assert.equal(page.items[0].id, queuedId);
      assert.equal(typeof page.nextCursor, 'string');
      const rest = await grove(['sync', 'list', `${ORG}/${name}`, '--limit', '2', '--cursor', page.nextCursor], env);
      assert.equal(rest.stdout.trimEnd().split('\n').length, 1, rest.stdout);
      const paged = await grove(['sync', 'list', `${ORG}/${name}`, '--limit', '1', '--upstream', 'origin'], env);
      assert.match(paged.stdout, new RegExp(`^more: grove sync list ${ORG}/${name} --cursor \\S+$`, 'm'));

      const updatedId = lines[1]!.split(' ')[0]!;
      const [shown, shownJson, missing] = await Promise.all([
        grove(['sync', 'show', `${ORG}/${name}`, updatedId], env),
        grove(['sync', 'show', `${ORG}/${name}`, updatedId, '--json', '--upstream', 'origin'], env),
        grove(['sync', 'show', `${ORG}/${name}`, 'sync_nope'], env),
      ]);
      assert.match(shown.stdout, /^updated {3}refs\/heads\/main {2}[0-9a-f]{7} → [0-9a-f]{7}\n/);
      const run = json(shownJson);
      assert.equal(run.id, updatedId);
      assert.deepEqual(run.counts, { updated: 1 });
      assert.equal(missing.code, 1);
      assert.equal(missing.stderr, 'grove: not_found: sync run sync_nope not found\n');
    });
  });

  describe('credentials that fail, and detaching', () => {
    it('reports a rejected credential (424) without storing anything; after `credential rotate` the same upstream set works', async () => {
      const { name, url } = await pair();
      const wrong = json(await groveIn(['credential', 'add', ORG, '--name', 'wrong', '--kind', 'basic', '--username', REMOTE_USER], env, 'not-the-token\n'));
      const refused = await grove(['upstream', 'set', `${ORG}/${name}`, url, '--credential', wrong.id], env);
      assert.equal(refused.code, 1);
      assert.equal(refused.stdout, '');
      assert.match(refused.stderr, /^grove: credential_rejected: the remote refused the credential: .+\n$/);
      assert.ok(!refused.stderr.includes('not-the-token'));
      assert.deepEqual(json(await grove(['upstream', 'list', `${ORG}/${name}`], env)), [], 'nothing stored');

      const rotated = await groveIn(['credential', 'rotate', ORG, wrong.id], env, `${REMOTE_TOKEN}\n`);
      const credential = json(rotated);
      assert.equal(credential.fingerprint, fingerprint(REMOTE_TOKEN));
      assert.notEqual(credential.fingerprint, wrong.fingerprint);
      assert.ok(!rotated.stdout.includes(REMOTE_TOKEN));
      const emptyRotate = await groveIn(['credential', 'rotate', ORG, wrong.id], env, '');
      assert.equal(emptyRotate.code, 1);
      assert.match(emptyRotate.stderr, /^grove: no secret on stdin/);

      const set = await grove(['upstream', 'set', `${ORG}/${name}`, url, '--credential', wrong.id, '--json'], env);
      const upstream = json(set);
      await server.server.sync.idle(upstream.id);
      const runs = json(await grove(['sync', 'list', `${ORG}/${name}`, '--json'], env));
      assert.equal(runs.items[0].status, 'succeeded');
    });

    it('shows, lists, resumes and deletes an upstream; a credential in use cannot be deleted until then', async () => {
      const { name, url } = await pair();
      const extra = json(await groveIn(['credential', 'add', ORG, '--name', `extra-${name}`, '--kind', 'basic', '--username', REMOTE_USER], env, REMOTE_TOKEN));
      const upstream = json(await grove(['upstream', 'set', `${ORG}/${name}`, url, '--credential', extra.id, '--json'], env));
      await server.server.sync.idle(upstream.id);
      const [shown, named, listed, resumed] = await Promise.all([
        grove(['upstream', 'show', `${ORG}/${name}`], env),
        grove(['upstream', 'show', `${ORG}/${name}`, 'origin'], env),
        grove(['upstream', 'list', `${ORG}/${name}`], env),
        grove(['upstream', 'resume', `${ORG}/${name}`], env),
      ]);
      assert.equal(json(shown).id, upstream.id);
      assert.equal(json(shown).webhook.secret, undefined);
      assert.deepEqual(json(named), json(shown));
      assert.deepEqual(json(listed).map((u: { id: string }) => u.id), [upstream.id]);
      assert.equal(json(resumed).status.state, 'active');

      const inUse = await grove(['credential', 'delete', ORG, extra.id], env);
      assert.equal(inUse.code, 1);
      assert.match(inUse.stderr, /^grove: in_use: credential extra-app-\d+ is used by 1 upstream: change or delete it first\n$/);

      silent(await grove(['upstream', 'delete', `${ORG}/${name}`], env));
      const [gone, listAfter, syncGone] = await Promise.all([
        grove(['upstream', 'show', `${ORG}/${name}`], env),
        grove(['upstream', 'list', `${ORG}/${name}`], env),
        grove(['sync', `${ORG}/${name}`, '--wait'], env),
      ]);
      assert.equal(gone.code, 1);
      assert.equal(gone.stderr, `grove: not_found: upstream origin of ${ORG}/${name} not found\n`);
      assert.deepEqual(json(listAfter), []);
      assert.equal(syncGone.code, 1);
      assert.equal(syncGone.stderr, `grove: not_found: upstream origin of ${ORG}/${name} not found\n`);
      const refs = await gitOk(['--git-dir', server.server.repos.gitDir((await server.sdk.repos.get(ORG, name)).id), 'for-each-ref', '--format=%(refname)']);
      assert.doesNotMatch(refs, /refs\/grove\//, 'its tracking refs went with it');

      silent(await grove(['credential', 'delete', ORG, extra.id], env));
      const showDeleted = await grove(['credential', 'show', ORG, extra.id], env);
      assert.equal(showDeleted.stderr, `grove: not_found: credential ${extra.id} not found\n`);
    });

    it('reports an unknown repository, org or upstream, and a malformed target, on one stderr line with exit 1', async () => {
      const runs = await Promise.all([
        grove(['sync', `${ORG}/nope`, '--wait'], env),
        grove(['sync', 'list', `${ORG}/nope`], env),
        grove(['upstream', 'set', `${ORG}/nope`, remote.repoUrl('nope')], env),
        grove(['upstream', 'list', `${ORG}/nope`], env),
        grove(['credential', 'list', 'no-such-org'], env),
        grove(['sync', 'nope'], env),
        grove(['sync', `${ORG}/app`, '--pull', '--push'], env),
        grove(['sync', `${ORG}/nope`], { GROVE_URL: server.url }),
      ]);
      const expected = [
        `grove: not_found: repository ${ORG}/nope not found\n`,
        `grove: not_found: repository ${ORG}/nope not found\n`,
        `grove: not_found: repository ${ORG}/nope not found\n`,
        `grove: not_found: repository ${ORG}/nope not found\n`,
        'grove: not_found: org no-such-org not found\n',
        'grove: expected ORG/REPO, got "nope"\n',
        'grove: --pull and --push exclude each other (neither: both directions)\n',
        'grove: GROVE_TOKEN is not set: export the admin token or an API key\n',
      ];
      for (const [i, run] of runs.entries()) {
        assert.equal(run.code, 1, `${i}: ${run.stderr}`);
        assert.equal(run.stdout, '', `${i}`);
        assert.equal(run.stderr, expected[i], `${i}`);
      }

      await server.createRepo(ORG, 'unreachable');
      const [unreachable, privateAddress, notHttps] = await Promise.all([
        grove(['upstream', 'set', `${ORG}/unreachable`, 'http://127.0.0.1:1/x.git'], env),
        grove(['upstream', 'set', `${ORG}/unreachable`, 'http://10.0.0.1/x.git'], env),
        grove(['upstream', 'set', `${ORG}/unreachable`, 'ftp://example.com/x.git'], env),
      ]);
      assert.equal(unreachable.code, 1);
      assert.match(unreachable.stderr, /^grove: remote_unreachable: the remote did not answer as a git server: .+\n$/);
      assert.equal(privateAddress.code, 1);
      assert.match(privateAddress.stderr, /^grove: unprocessable: url: 10\.0\.0\.1 is a loopback, private or reserved address/);
      assert.equal(notHttps.code, 1);
      assert.match(notHttps.stderr, /^grove: invalid_request: url must be https/);
      assert.deepEqual(await server.sdk.upstreams.list(ORG, 'unreachable'), [], 'nothing stored');
    });

    it('exits 1 with the error when a run fails (the remote answers 500)', async () => {
      const { name, url } = await pair();
      const upstream = await attach(name, url);
      remote.failWith = 500;
      try {
        const run = await grove(['sync', `${ORG}/${name}`, '--wait', '--timeout', '60'], env);
        assert.equal(run.code, 1, run.stdout + run.stderr);
        assert.match(run.stdout, /^failed: \S+: .+ \(run sync_\w+, both, manual/m);
        assert.match(run.stderr, /^grove: \S+: .+\n$/);
        assert.ok(!run.stdout.includes(REMOTE_TOKEN) && !run.stderr.includes(REMOTE_TOKEN));
      } finally {
        remote.failWith = null;
        await server.server.sync.idle(upstream.id);
      }
      // The upstream is not paused by a transport failure: the next run works.
      assert.equal((await grove(['sync', `${ORG}/${name}`, '--wait'], env)).code, 0);
    });
  });
});
