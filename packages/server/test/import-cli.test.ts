/**
 * `grove import URL ORG/REPO` against a real server and a real git remote on loopback: the
 * import answered at once, `--wait` following it with progress lines to the end, a failed
 * import reported on stderr with exit 1, and the SDK's import, status and wait.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { grove, json } from './helpers/cli.ts';
import { gitOk, tempDir } from './helpers/git.ts';
import { REMOTE_USER, SyncRig } from './helpers/sync-rig.ts';

const ORG = 'acme';

describe('grove import', () => {
  let work: Awaited<ReturnType<typeof tempDir>>;
  let rig: SyncRig;
  let env: Record<string, string>;
  let credentialId: string;

  before(async () => {
    work = await tempDir();
    rig = await SyncRig.start(work.path);
    await rig.grove.sdk.orgs.create({ name: ORG });
    credentialId = await rig.credential(ORG);
    env = { GROVE_URL: rig.grove.url, GROVE_TOKEN: rig.grove.token };
    await rig.remote.createRepo('source');
    const tree = await rig.workTree();
    for (let i = 0; i < 5; i++) await tree.commit();
    await rig.pushToRemote(tree.dir, 'source', ['HEAD:refs/heads/main', 'HEAD~2:refs/heads/old']);
  });

  after(async () => {
    await rig.close();
    await work[Symbol.asyncDispose]();
  });

  it('imports with --wait, printing progress and the final state', async () => {
    const run = await grove(['import', rig.remote.repoUrl('source'), `${ORG}/waited`, '--credential', credentialId, '--wait'], env, 60_000);
    assert.equal(run.code, 0, run.stderr);
    const final = JSON.parse(run.stdout);
    assert.equal(final.status, 'succeeded');
    assert.equal(final.refs, 2);
    assert.match(run.stderr, /\[#+\] 100% succeeded http:\/\/127\.0\.0\.1:\d+\/source\.git/);
    assert.deepEqual(await rig.lsRemote(rig.groveUrl(ORG, 'waited')), await rig.lsRemote(rig.remote.authedUrl('source')));
  });

  it('answers at once without --wait, with the import to follow', async () => {
    const run = await grove(['import', rig.remote.repoUrl('source'), `${ORG}/later`, '--credential', credentialId], env);
    assert.equal(run.code, 0, run.stderr);
    const started = json(run);
    assert.equal(started.name, 'later');
    assert.equal(started.import.status, 'importing');
    const done = await rig.grove.sdk.repos.waitForImport(ORG, started.import.id, { intervalMs: 50 });
    assert.equal(done.status, 'succeeded');
    assert.equal((await rig.grove.sdk.repos.importStatus(ORG, started.import.id)).progress, 100);
  });

  it('exits 1 with the reason when the import fails, and leaves no repository', async () => {
    const wrong = await rig.grove.sdk.credentials.create(ORG, { name: 'wrong-cli', kind: 'basic', username: REMOTE_USER, secret: 'tok_wrong_for_cli_import' });
    const run = await grove(['import', rig.remote.repoUrl('source'), `${ORG}/refused`, '--credential', wrong.id, '--wait'], env, 60_000);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /grove: the import failed: credential_rejected: cloning the remote failed: the remote refused the credential/);
    assert.ok(!run.stderr.includes('tok_wrong_for_cli_import'));
    assert.equal((await rig.api('GET', `/repos/${ORG}/refused`)).status, 404);
  });

  it('refuses a URL that names a private address before making anything', async () => {
    const run = await grove(['import', 'https://10.1.2.3/x.git', `${ORG}/private`], env);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /grove: unprocessable: import\.url: .*private or reserved/);
  });

  it('imports a mirror through the SDK, whose webhook secret is shown once', async () => {
    const started = await rig.grove.sdk.repos.import(ORG, { name: 'mirrored', url: rig.remote.repoUrl('source'), credentialId, mirror: true });
    assert.ok(started.import.webhook?.secret.startsWith('whsec_'));
    const seen: number[] = [];
    const done = await rig.grove.sdk.repos.waitForImport(ORG, started.import.id, { intervalMs: 20, onProgress: (state) => seen.push(state.progress) });
    assert.equal(done.status, 'succeeded');
    assert.equal(seen[seen.length - 1], 100);
    assert.deepEqual(seen, [...seen].sort((a, b) => a - b), 'progress never goes back');
    const upstream = await rig.grove.sdk.upstreams.get(ORG, 'mirrored', 'origin');
    assert.equal(upstream.readOnly, true);
    await using clone = await tempDir();
    await gitOk(['clone', '-q', rig.groveUrl(ORG, 'mirrored'), clone.path]);
  });
});
