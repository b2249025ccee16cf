/**
 * The live event stream (`GET /api/v1/events`, Server-Sent Events) against a real server:
 * through the SDK's async iterator and raw fetch, live delivery, resume with
 * Last-Event-ID after a disconnect (checked against the durable log in the database),
 * type and repository filters, what a key limited to one repository may see, and
 * `grove events` (the CLI).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { Grove, GroveApiError, type GroveEvent, type StreamOptions } from '@grove/sdk';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { auth, commitFile, gitOk, initWorkRepo, tempDir } from './helpers/git.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const GROVE_BIN = path.join(ROOT, 'bin/grove.js');
const COMPILE_CACHE = path.join(os.tmpdir(), 'grove-test-node-compile-cache');

interface SseEvent {
  readonly id: number;
  readonly type: string;
  readonly data: GroveEvent;
}

/** A raw SSE client over fetch: records every event block as sent. */
class RawStream {
  readonly events: SseEvent[] = [];
  /** Everything received, verbatim. */
  text = '';
  readonly #controller = new AbortController();
  #done: Promise<void> = Promise.resolve();
  response!: Response;

  static async open(url: string, headers: Record<string, string>): Promise<RawStream> {
    const stream = new RawStream();
    stream.response = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: stream.#controller.signal });
    if (stream.response.status !== 200) return stream;
    const reader = stream.response.body!.pipeThrough(new TextDecoderStream()).getReader();
    stream.#done = (async () => {
      let buffer = '';
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          stream.text += value;
          buffer += value;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) !== -1) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const fields = new Map<string, string>();
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) continue;
              const colon = line.indexOf(': ');
              fields.set(line.slice(0, colon), line.slice(colon + 2));
            }
            if (!fields.has('data')) continue;
            stream.events.push({ id: Number(fields.get('id')), type: fields.get('event')!, data: JSON.parse(fields.get('data')!) as GroveEvent });
          }
        }
      } catch {
        // aborted
      }
    })();
    // The first comment means the server has subscribed and is replaying.
    const deadline = Date.now() + 5000;
    while (!stream.text.startsWith(': grove events')) {
      if (Date.now() > deadline) throw new Error(`no SSE preamble: ${JSON.stringify(stream.text)}`);
      await delay(10);
    }
    return stream;
  }

  async waitFor(what: string, predicate: (events: SseEvent[]) => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.events)) {
      if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms; got ids ${this.events.map((e) => `${e.id}:${e.type}:${e.data.repo}`).join(', ') || '(none)'}`);
      await delay(10);
    }
  }

  async close(): Promise<void> {
    this.#controller.abort();
    await this.#done;
  }
}

interface Collected {
  readonly events: GroveEvent[];
  /** Settles with 'ended' or the error the iteration ended with. */
  readonly done: Promise<unknown>;
  waitFor(what: string, predicate: (events: GroveEvent[]) => boolean, timeoutMs?: number): Promise<void>;
  /** Aborts the stream and waits for the iteration to end. */
  close(): Promise<void>;
}

/** Consumes `client.events.stream(options)` in the background. */
function collect(client: Grove, options: StreamOptions): Collected {
  const controller = new AbortController();
  const events: GroveEvent[] = [];
  const done = (async () => {
    for await (const event of client.events.stream({ ...options, signal: controller.signal })) events.push(event);
  })().then(() => 'ended', (error: unknown) => error);
  return {
    events,
    done,
    async waitFor(what, predicate, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(events)) {
        const settled = await Promise.race([done, delay(10).then(() => undefined)]);
        if (settled !== undefined) assert.fail(`${what}: the stream ended (${String(settled)}) with ids ${events.map((e) => e.id).join(', ')}`);
        if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms; got ${events.map((e) => `${e.id}:${e.type}:${e.repo}`).join(', ') || '(none)'}`);
      }
    },
    async close() {
      controller.abort();
      await done;
    },
  };
}

function grove(args: readonly string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [GROVE_BIN, ...args], { cwd: ROOT, env: { PATH: process.env.PATH, NODE_COMPILE_CACHE: COMPILE_CACHE, ...env }, encoding: 'utf8', timeout: 20_000 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') return reject(error);
      resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}

async function expectApiError(promise: Promise<unknown>, status: number, what: string): Promise<void> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof GroveApiError, `${what}: ${String(error)}`);
    assert.equal(error.status, status, `${what}: ${error.status} ${error.message}`);
    return;
  }
  assert.fail(`${what}: succeeded, expected ${status}`);
}

describe('the live event stream', () => {
  let server: TestServer;
  let work: Awaited<ReturnType<typeof tempDir>>;
  let tree: string;
  let treeCommits = 0;
  const urls = new Map<string, string>();

  /** The newest event id in the durable log. */
  async function latestId(): Promise<number> {
    const row = await server.server.db.selectFrom('events').select((eb) => eb.fn.max('commit_seq').as('id')).executeTakeFirst();
    return Number(row?.id ?? 0);
  }

  /**
   * Committed events of an org after public id `afterId`, from the database (the truth the
   * stream must match). `seq` here is the public id (commit_seq), not the journal's row id:
   * the two differ once an event was dropped or two writes committed out of journal order.
   */
  async function logAfter(org: string, afterId: number): Promise<{ seq: number; type: string; repo: string | null }[]> {
    const rows = await server.server.db.selectFrom('events').select(['commit_seq', 'type', 'repo']).where('org', '=', org).where('state', '=', 'committed').where('commit_seq', '>', afterId).orderBy('commit_seq').execute();
    return rows.map((row) => ({ seq: Number(row.commit_seq), type: row.type, repo: row.repo }));
  }

  async function repo(org: string, name: string): Promise<string> {
    const url = await server.createRepo(org, name);
    urls.set(`${org}/${name}`, url);
    return url;
  }

  /** A new commit on `main` of the shared work tree, pushed to org/repo (push + branch.created the first time). */
  async function push(org: string, name: string, refspec = 'main'): Promise<string> {
    treeCommits++;
    const sha = await commitFile(tree, 'file.txt', `change ${treeCommits}\n`, `change ${treeCommits}`);
    await gitOk([...auth(server.token), 'push', '--force', urls.get(`${org}/${name}`)!, refspec], { cwd: tree });
    return sha;
  }

  const streamUrl = (query: string) => `${server.url}/api/v1/events?${query}`;
  const bearer = (token = server.token) => ({ authorization: `Bearer ${token}` });

  before(async () => {
    server = await startTestServer({ GROVE_SWEEP_INTERVAL_MS: String(3600_000) });
    work = await tempDir('grove-events-');
    tree = path.join(work.path, 'tree');
    await initWorkRepo(tree);
    await repo('es', 'r1');
    await repo('es', 'r2');
    await repo('es-other', 'r1');
  });
  after(async () => {
    await server.close();
    await work[Symbol.asyncDispose]();
  });

  it('streams live events through the SDK async iterator as they happen, and ends when its signal aborts', async () => {
    const start = await latestId();
    const stream = collect(server.sdk, { org: 'es', after: start });
    await delay(200); // connected and idle: what follows is live, not replayed
    const sha = await push('es', 'r1');
    await stream.waitFor('push and branch.created', (events) => events.length >= 2);
    const commit = await server.sdk.commits.create('es', 'r1', { branch: 'main', message: 'by api', files: [{ path: 'api.txt', content: 'x\n' }] });
    await stream.waitFor('commit.created', (events) => events.some((e) => e.type === 'commit.created'));
    await stream.close();
    assert.equal((await stream.done as Error).name, 'AbortError', 'the iteration ends with the abort');

    const [pushEvent, created, committed] = stream.events;
    assert.equal(stream.events.length, 3, stream.events.map((e) => e.type).join());
    assert.equal(pushEvent!.type, 'push');
    assert.equal(pushEvent!.org, 'es');
    assert.equal(pushEvent!.repo, 'r1');
    assert.deepEqual(pushEvent!.payload.refs, [{ ref: 'refs/heads/main', before: null, after: sha, forced: false }]);
    assert.deepEqual(pushEvent!.actor, { kind: 'root', id: null, name: 'root' });
    assert.equal(created!.type, 'branch.created');
    assert.equal(committed!.type, 'commit.created');
    assert.equal(committed!.payload.sha, commit.sha);
    assert.ok(pushEvent!.id > start && created!.id > pushEvent!.id && committed!.id > created!.id, 'ids increase');
    assert.deepEqual(stream.events.map((e) => e.id), (await logAfter('es', start)).map((e) => e.seq), 'the same events as the durable log');
  });

  it('speaks Server-Sent Events on the wire: id, event and data lines, starting from now without Last-Event-ID', async () => {
    const before = await push('es', 'r1'); // happened before the stream opened: not replayed
    const raw = await RawStream.open(streamUrl('org=es'), bearer());
    try {
      assert.equal(raw.response.status, 200);
      assert.match(raw.response.headers.get('content-type') ?? '', /^text\/event-stream/);
      assert.equal(raw.response.headers.get('cache-control'), 'no-cache');
      const sha = await push('es', 'r2');
      await raw.waitFor('the push to r2', (events) => events.some((e) => e.type === 'push'));
      const event = raw.events.find((e) => e.type === 'push')!;
      assert.equal(event.data.id, event.id);
      assert.equal(event.data.type, event.type);
      assert.equal(event.data.repo, 'r2');
      assert.notEqual((event.data.payload.refs as { after: string }[])[0]!.after, before);
      assert.equal((event.data.payload.refs as { after: string }[])[0]!.after, sha);
      assert.match(raw.text, new RegExp(`\\nid: ${event.id}\\nevent: push\\ndata: \\{"id":${event.id},`));
      assert.ok(raw.events.every((e) => e.data.repo === 'r2'), 'nothing from before the stream opened');
    } finally {
      await raw.close();
    }
  });

  it('resumes with Last-Event-ID after a disconnect with exactly the missed events: no gap, no duplicate', async () => {
    const start = await latestId();
    const first = await RawStream.open(streamUrl(`org=es&after=${start}`), bearer());
    await push('es', 'r1');
    await first.waitFor('the first push', (events) => events.some((e) => e.type === 'push'));
    await first.close();
    const lastSeen = first.events[first.events.length - 1]!.id;

    // While disconnected: API commits, a push with a new branch, a key (an org event without a repo).
    for (let i = 0; i < 3; i++) await server.sdk.commits.create('es', 'r2', { branch: 'main', message: `offline ${i}`, files: [{ path: `offline-${i}.txt`, content: `${i}\n` }] });
    await push('es', 'r1', 'main:refs/heads/offline');
    const key = await server.sdk.apiKeys.create({ scope: 'read', resources: [{ org: 'es' }], name: 'offline-key' });
    const missed = await logAfter('es', lastSeen);
    assert.equal(missed.length, 3 + 2 + 1, JSON.stringify(missed));

    const resumed = await RawStream.open(streamUrl('org=es'), { ...bearer(), 'last-event-id': String(lastSeen) });
    try {
      await resumed.waitFor('the missed events', (events) => events.length >= missed.length);
      await server.sdk.apiKeys.revoke(key.id); // live, after the replay
      await resumed.waitFor('the live key.revoked', (events) => events.some((e) => e.type === 'key.revoked'));
      await delay(200);
      const expected = await logAfter('es', lastSeen);
      assert.deepEqual(resumed.events.map((e) => e.id), expected.map((e) => e.seq), 'exactly the log after Last-Event-ID');
      assert.deepEqual(resumed.events.map((e) => e.type), expected.map((e) => e.type));
      assert.deepEqual([...first.events, ...resumed.events].map((e) => e.id), (await logAfter('es', start)).map((e) => e.seq), 'both connections together: the whole log, once');
    } finally {
      await resumed.close();
    }

    // The SDK's `after` is the same resume point.
    const sdkStream = collect(server.sdk, { org: 'es', after: lastSeen });
    await sdkStream.waitFor('the replay', (events) => events.length >= missed.length + 1);
    await delay(100);
    await sdkStream.close();
    assert.deepEqual(sdkStream.events.map((e) => e.id), (await logAfter('es', lastSeen)).map((e) => e.seq));

    // A Last-Event-ID that is not an event id is refused.
    const bad = await fetch(streamUrl('org=es'), { headers: { ...bearer(), 'last-event-id': 'yesterday' } });
    assert.equal(bad.status, 400);
    await bad.arrayBuffer();
  });

  it('filters by event types and by repository', async () => {
    const start = await latestId();
    const byType = collect(server.sdk, { org: 'es', types: ['branch.created', 'commit.created'], after: start });
    const byRepo = collect(server.sdk, { org: 'es', repo: 'r2', after: start });
    await push('es', 'r1', 'main:refs/heads/filter-1'); // push + branch.created in r1
    const c = await server.sdk.commits.create('es', 'r2', { branch: 'main', message: 'filtered', files: [{ path: 'f.txt', content: 'f\n' }] }); // commit.created in r2
    await push('es', 'r2'); // push in r2
    await server.sdk.branches.create('es', 'r2', { name: 'filter-done', sha: c.sha }); // branch.created in r2: the last event
    const log = await logAfter('es', start);
    await byType.waitFor('the last branch.created', (events) => events.some((e) => e.repo === 'r2' && e.type === 'branch.created'));
    await byRepo.waitFor('the last branch.created', (events) => events.some((e) => e.type === 'branch.created'));
    assert.deepEqual(byType.events.map((e) => e.id), log.filter((e) => e.type === 'branch.created' || e.type === 'commit.created').map((e) => e.seq));
    assert.deepEqual(byType.events.map((e) => `${e.type} ${e.repo}`), ['branch.created r1', 'commit.created r2', 'branch.created r2']);
    assert.deepEqual(byRepo.events.map((e) => e.id), log.filter((e) => e.repo === 'r2').map((e) => e.seq));
    assert.deepEqual(byRepo.events.map((e) => e.type), ['commit.created', 'push', 'branch.created']);
    await byType.close();
    await byRepo.close();

    // Bad filters are refused.
    for (const [query, what] of [['org=es&types=push,exploded', 'an unknown type'], ['repo=r1', 'repo without org'], ['org=es&after=-1', 'a negative after']] as const) {
      const response = await fetch(streamUrl(query), { headers: bearer() });
      assert.equal(response.status, 400, what);
      await response.arrayBuffer();
    }
    const anonymous = await fetch(streamUrl('org=es'));
    assert.equal(anonymous.status, 401);
    await anonymous.arrayBuffer();
  });

  it("shows a key limited to one repository only that repository's events, and 404 for another org's stream", async () => {
    const key = await server.sdk.apiKeys.create({ scope: 'read', resources: [{ org: 'es', repo: 'r1' }], name: 'r1-reader' });
    const client = new Grove({ baseUrl: server.url, token: key.token });
    const start = await latestId();
    const stream = collect(client, { org: 'es', after: start });
    await push('es', 'r2');
    await server.sdk.commits.create('es', 'r2', { branch: 'main', message: 'hidden', files: [{ path: 'hidden.txt', content: 'h\n' }] });
    const other = await server.sdk.apiKeys.create({ scope: 'read', resources: [{ org: 'es' }] }); // key.created: no repo
    await server.sdk.apiKeys.revoke(other.id);
    const sha = await push('es', 'r1');
    await stream.waitFor('the push to r1', (events) => events.some((e) => e.type === 'push'));
    await delay(200);
    await stream.close();
    const log = await logAfter('es', start);
    assert.ok(log.some((e) => e.repo === 'r2') && log.some((e) => e.repo === null), 'there were events it must not see');
    assert.deepEqual(stream.events.map((e) => e.id), log.filter((e) => e.repo === 'r1').map((e) => e.seq));
    assert.deepEqual((stream.events[0]!.payload.refs as { after: string }[])[0]!.after, sha);

    await expectApiError(client.events.stream({ org: 'es-other', after: 0 }).next(), 404, "another org's stream");
    await expectApiError(client.events.stream({ org: 'es', repo: 'r2', after: 0 }).next(), 404, "another repository's stream");
    await expectApiError(client.events.stream({ after: 0 }).next(), 400, 'a stream without org');
    // Its own repository by name works, from the log.
    const own = collect(client, { org: 'es', repo: 'r1', after: start });
    await own.waitFor('the replay of r1', (events) => events.length >= 1);
    await delay(100);
    await own.close();
    assert.deepEqual(own.events.map((e) => e.id), log.filter((e) => e.repo === 'r1').map((e) => e.seq));
  });

  // Regression: event ids used to be allocated when an event was journaled (before the ref
  // transaction) and published when it committed, and the stream drops ids not above the last
  // one it sent, so a later id committed first hid the earlier one for good. Public ids now
  // follow commit order (commit_seq). This test once compared them with the journal's row ids,
  // which differ from public ids whenever writes commit out of journal order: a flaky failure.
  it('delivers every event to a live stream while API commits to several repositories run concurrently', async () => {
    const names = Array.from({ length: 8 }, (_, i) => `c${i}`);
    for (const name of names) await server.createRepo('es-conc', name);
    const start = await latestId();
    const stream = collect(server.sdk, { org: 'es-conc', after: start });
    await delay(200);
    for (let round = 0; round < 3; round++) {
      await Promise.all(names.map((name) => server.sdk.commits.create('es-conc', name, { branch: 'main', message: `round ${round}`, files: [{ path: 'round.txt', content: `${name} ${round}\n` }] })));
    }
    const log = await logAfter('es-conc', start);
    assert.equal(log.length, 8 * 3 + 8, '24 commit.created and 8 branch.created');
    try {
      await stream.waitFor('every committed event', (events) => events.length >= log.length, 3000);
    } catch (error) {
      const got = new Set(stream.events.map((e) => e.id));
      const missing = log.filter((e) => !got.has(e.seq)).map((e) => e.seq);
      assert.fail(`the live stream missed ${missing.length} of ${log.length} events: ${missing.join(', ')} (${(error as Error).message.split(';')[0]})`);
    } finally {
      await stream.close();
    }
    assert.deepEqual(stream.events.map((e) => e.id), log.map((e) => e.seq));
  });

  describe('a replay longer than one batch (500 events)', () => {
    let start: number;
    let sha: string;
    before(async () => {
      // big/a: push + branch.created; big/b: one push creating 600 branches (601 events); big/a: push.
      const aUrl = await repo('es-big', 'a');
      const bUrl = await repo('es-big', 'b');
      start = await latestId();
      const base = await commitFile(tree, 'big.txt', 'big\n', 'big');
      await gitOk([...auth(server.token), 'push', '--force', aUrl, 'main'], { cwd: tree });
      const refs = Array.from({ length: 600 }, (_, i) => `create refs/heads/many-${String(i).padStart(3, '0')} ${base}\n`).join('');
      await gitOk(['update-ref', '--stdin'], { cwd: tree, input: refs });
      await gitOk([...auth(server.token), 'push', bUrl, 'refs/heads/many-*:refs/heads/many-*'], { cwd: tree });
      sha = await commitFile(tree, 'big.txt', 'bigger\n', 'bigger');
      await gitOk([...auth(server.token), 'push', aUrl, 'main'], { cwd: tree });
    });

    it('replays all of them, in order, to the root token', async () => {
      const log = await logAfter('es-big', start);
      assert.equal(log.length, 2 + 601 + 1);
      const stream = collect(server.sdk, { org: 'es-big', after: start });
      await stream.waitFor('604 events', (events) => events.length >= log.length);
      await delay(100);
      await stream.close();
      assert.deepEqual(stream.events.map((e) => e.id), log.map((e) => e.seq));
    });

    // Regression: the replay used to stop at the first batch from EventLog.since() with fewer
    // than 500 events, but since() reads 500 rows before dropping the repositories a key may not
    // see, so a repo-limited key lost its repository's events that lay past 500 other ones.
    it("replays every event of a repo-limited key's repository even when more than 500 events of other repositories lie between them", async () => {
      const key = await server.sdk.apiKeys.create({ scope: 'read', resources: [{ org: 'es-big', repo: 'a' }] });
      const client = new Grove({ baseUrl: server.url, token: key.token });
      const expected = (await logAfter('es-big', start)).filter((e) => e.repo === 'a');
      assert.deepEqual(expected.map((e) => e.type), ['push', 'branch.created', 'push']);
      const stream = collect(client, { org: 'es-big', after: start });
      try {
        await stream.waitFor(`big/a's three events (the last is the push of ${sha.slice(0, 7)})`, (events) => events.length >= 3, 3000);
        assert.deepEqual(stream.events.map((e) => e.id), expected.map((e) => e.seq));
      } finally {
        await stream.close();
      }
    });
  });

  it('prints the events of an org as JSON lines with `grove events --org … --after 0`', async () => {
    const env = { GROVE_URL: server.url, GROVE_TOKEN: server.token };
    const log = await logAfter('es', 0);
    const all = await grove(['events', '--org', 'es', '--after', '0'], env);
    assert.equal(all.code, 0, all.stderr);
    assert.equal(all.stderr, '');
    const lines = all.stdout.trimEnd().split('\n');
    const events = lines.map((line) => JSON.parse(line) as GroveEvent);
    assert.deepEqual(events.map((e) => e.id), log.map((e) => e.seq), 'every event of the org, once, in order');
    for (const event of events) {
      assert.equal(event.org, 'es');
      assert.equal(typeof event.time, 'string');
      assert.ok(event.actor && event.payload);
    }

    const pushes = await grove(['events', '--org', 'es', '--repo', 'r2', '--type', 'push', '--after', '0'], env);
    assert.equal(pushes.code, 0, pushes.stderr);
    const pushEvents = pushes.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as GroveEvent);
    assert.deepEqual(pushEvents.map((e) => e.id), log.filter((e) => e.type === 'push' && e.repo === 'r2').map((e) => e.seq));

    const key = await server.sdk.apiKeys.create({ scope: 'read', resources: [{ org: 'es' }] });
    const denied = await grove(['events', '--org', 'es-other', '--after', '0'], { ...env, GROVE_TOKEN: key.token });
    assert.equal(denied.code, 1, denied.stdout);
    assert.equal(denied.stdout, '');
    assert.match(denied.stderr, /not_found: org es-other not found/);
  });
});
