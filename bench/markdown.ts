/** docs/benchmarks.md: the table, what was not met and why, the machine, the method and the details. */
import os from 'node:os';
import { describeLayout } from './e2e.ts';
import { LOAD_OPS, type LoadResult } from './load-client.ts';
import { markdownTable, ratioOf, verdict, type Row } from './report.ts';
import { key, type Results } from './results.ts';
import { ROW_OPS } from './rows.ts';
import { PUSH_PHASES } from './server-metrics.ts';
import { fmtBytes, fmtMs } from './util.ts';

function details(r: Results): string {
  const lines: string[] = [];
  const sides = r.peerAvailable ? ['grove', 'peer'] : ['grove'];
  const label = (s: string): string => (s === 'grove' ? 'Grove' : 'peer');
  lines.push('### Protocol load (bench/load-client.ts)', '');
  lines.push(
    `Transport \`${r.transport}\`. "server CPU/req": CPU time of the server's processes per good response. For Grove`,
    "(and the replay server) it is exact: its node process plus its git children, which node waits for. fcgiwrap's",
    'workers do not account their CGI children, so for the peer it is the whole machine\'s CPU minus the client\'s,',
    'an upper bound that includes anything else running then. "machine busy" is the share of all cores in use',
    'during the run; "other work" the share used by neither the server nor the client (other processes on the',
    "machine: it should be near 0%). The ceiling rows replay Grove's recorded response from a trivial Node server",
    '(`bench/replay-server.ts`): the most this client can receive on this machine for that workload.',
    '',
  );
  lines.push('| workload | server | ok | errors | time | req/s | p50 | p95 | max | mean body | server CPU/req | client CPU/req | machine busy | other work | first response |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  const other = (l: LoadResult, s: string): string => {
    if (s === 'peer' || !Number.isFinite(l.totals.serverCpuMs)) return '—';
    const ms = Math.max(0, l.totals.machineBusyMs - l.totals.clientCpuMs - l.totals.serverCpuMs);
    return `${((ms / (l.elapsedMs * os.availableParallelism())) * 100).toFixed(0)}%`;
  };
  const cpu = (v: number, upper = false): string => (Number.isFinite(v) ? `${upper ? '≤ ' : ''}${v.toFixed(2)} ms` : '—');
  for (const op of LOAD_OPS) {
    for (const s of [...sides, 'ceiling']) {
      const l = r.load.get(key(s, op));
      const name = s === 'ceiling' ? 'client ceiling' : label(s);
      if (!l) {
        if (s !== 'ceiling') lines.push(`| ${op} | ${name} | — | — | — | — | — | — | — | — | — | — | — | — | failed |`);
        continue;
      }
      const d = l.detail;
      const what = !d ? '' : op === 'ls-refs' ? `${d.refs} refs` : op === 'info-refs' ? `${d.lines} lines` : `${d.packObjects ?? '?'} objects, ${fmtBytes(d.packBytes)} pack${d.shallowLines ? `, ${d.shallowLines} shallow line(s)` : ''}`;
      lines.push(
        `| ${op} | ${name} | ${l.completed} | ${l.errors} | ${(l.elapsedMs / 1000).toFixed(1)} s${l.hitTimeLimit ? ' (cap)' : ''} | ${l.rps.toFixed(1)} | ${fmtMs(l.p50Ms)} | ${fmtMs(l.p95Ms)} | ${fmtMs(l.maxMs)} | ${fmtBytes(l.meanBytes)} | ${s === 'peer' ? cpu(l.machineCpuMsPerRequest - l.clientCpuMsPerRequest, true) : cpu(l.serverCpuMsPerRequest)} | ${cpu(l.clientCpuMsPerRequest)} | ${l.machineBusyPercent.toFixed(0)}% | ${other(l, s)} | ${s === 'ceiling' ? '' : what} |`,
      );
    }
  }
  lines.push('');
  if (r.rss.size > 0) {
    lines.push('### Concurrent full clones (memory sampled every 50 ms)', '');
    lines.push('| server | clones at once | before | peak, server processes (PSS) | peak, with git children | git processes at peak | samples | clones ok | errors | wall time | p50 | p95 |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const s of [...sides, 'grove-many']) {
      const x = r.rss.get(s);
      if (!x) continue;
      lines.push(`| ${label(s === 'grove-many' ? 'grove' : s)} | ${x.load.completed + x.load.errors} | ${fmtBytes(x.baselineServer)} | ${fmtBytes(x.peakServer)} | ${fmtBytes(x.peakTree)} | ${x.peakGitProcesses} | ${x.samples} | ${x.load.completed} | ${x.load.errors} | ${fmtMs(x.load.elapsedMs)} | ${fmtMs(x.load.p50Ms)} | ${fmtMs(x.load.p95Ms)} |`);
    }
    lines.push('', `Grove right after it started (before any workload): ${fmtBytes(r.groveIdleRss)} RSS of its node process, ${fmtBytes(r.groveIdlePss)} PSS with its git launcher.`, '');
  }
  if (r.pushBreakdowns.size > 0) {
    lines.push('### Where a push\'s time goes (Grove, from its /metrics)', '');
    lines.push('Mean time per push in each phase of `grove_git_push_phase_seconds`: parse (the command list), receive (the pack streamed into `git index-pack`), objects (connectivity, types and force-push ancestry, in parallel processes), migrate (out of the quarantine, directories fsynced), refs (the ref change with its events through RefStore: the pending events, the compare-and-swap transaction with its queue, the events committed), report. Then the git processes each push started, with their mean start time through the launcher, and how many pushes shared one `update-ref` transaction (group commit).', '');
    lines.push(`| workload | pushes | server time per push | ${PUSH_PHASES.join(' | ')} | pushes per ref transaction |`);
    lines.push(`|---|---:|---:|${PUSH_PHASES.map(() => '---:').join('|')}|---:|`);
    for (const [workload, b] of r.pushBreakdowns) {
      lines.push(`| ${workload} | ${b.pushes} | ${fmtMs(b.meanMs)} | ${PUSH_PHASES.map((p) => fmtMs(b.phasesMs[p])).join(' | ')} | ${Number.isFinite(b.pushesPerTransaction) ? b.pushesPerTransaction.toFixed(2) : '—'} |`);
    }
    lines.push('');
    for (const [workload, b] of r.pushBreakdowns) {
      lines.push(`- ${workload}, git processes per push: ${b.processes.map((p) => `${p.command} ${p.perPush.toFixed(2)} (starts in ${fmtMs(p.startMs)})`).join(', ') || 'none'}`);
    }
    lines.push('');
  }
  if (r.fleet.size > 0) {
    lines.push('### The fleet run', '');
    lines.push('| server | agents | at once | ok | failed | clone p50 / p95 / p99 | commit p50 | push p50 / p95 / p99 | end-to-end p50 / p95 / p99 | wall time |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const s of sides) {
      const f = r.fleet.get(s);
      if (!f) continue;
      const three = (l: { p50Ms: number; p95Ms: number; p99Ms: number }) => `${fmtMs(l.p50Ms)} / ${fmtMs(l.p95Ms)} / ${fmtMs(l.p99Ms)}`;
      lines.push(`| ${label(s)} | ${f.agents} | ${f.concurrency} | ${f.endToEnd.samples} | ${f.failures} | ${three(f.clone)} | ${fmtMs(f.commit.p50Ms)} | ${three(f.push)} | ${three(f.endToEnd)} | ${fmtMs(f.wallMs)} |`);
      if (f.firstError) lines.push(`|  | first error: ${f.firstError.replace(/[|\n]/g, ' ')} |||||||||`);
    }
    lines.push('');
    for (const s of sides) {
      const probes = r.probes.get(s);
      if (!probes) continue;
      lines.push(`- requests by another client during the fleet run on ${label(s)}, one at a time: ${probes.map((p) => `${p.name} ${p.latency.samples} done, p50 ${fmtMs(p.latency.p50Ms)}, p99 ${fmtMs(p.latency.p99Ms)}, ${p.errors} errors${p.firstError ? ` (${p.firstError})` : ''}`).join('; ')}`);
    }
    lines.push('');
  }
  if (r.fairness) {
    const f = r.fairness;
    lines.push('### Fair share under a runaway key', '');
    lines.push(`- ${f.agents} agents, all at once, push a new branch each: alone p50 ${fmtMs(f.alone.p50Ms)}, p95 ${fmtMs(f.alone.p95Ms)}, ${f.alone.failures} failed; beside the runaway p50 ${fmtMs(f.withRunaway.p50Ms)}, p95 ${fmtMs(f.withRunaway.p95Ms)}, ${f.withRunaway.failures} failed.`);
    lines.push(`- the runaway key kept ${f.runawayClones} full clones of one commit in flight for ${fmtMs(f.runaway.elapsedMs)}: ${f.runaway.completed} completed (p50 ${fmtMs(f.runaway.p50Ms)}), ${f.runaway.errors} refused or failed${f.runaway.firstError ? ` (first: ${f.runaway.firstError.replace(/\n/g, ' ').slice(0, 200)})` : ''}.`);
    lines.push('');
  }
  if (r.cpuProfile) {
    const p = r.cpuProfile;
    lines.push('### CPU profile of Grove\'s node process (--cpu-prof)', '');
    lines.push(`Over the whole run: ${fmtMs(p.totalMs)} sampled, ${fmtMs(p.totalMs - p.idleMs)} busy. The functions with the most self time (share of busy time):`, '');
    lines.push('| function | where | self time | share |');
    lines.push('|---|---|---:|---:|');
    for (const f of p.top) lines.push(`| \`${f.name}\` | ${f.where} | ${fmtMs(f.selfMs)} | ${(f.share * 100).toFixed(1)}% |`);
    lines.push('');
  }
  if (r.clone) {
    lines.push('### git CLI', '');
    for (const s of sides) {
      const c = r.clone.get(s);
      if (c) lines.push(`- \`git clone\` on ${label(s)}: ${c.samples.map((x) => fmtMs(x)).join(', ')} (median ${fmtMs(c.medianMs)})${c.failures ? `; ${c.failures} failed: ${c.firstError}` : ''}`);
    }
    for (const s of sides) {
      const a = r.agents.get(s);
      if (a) lines.push(`- ${a.pushes} agent pushes on ${label(s)}, ${a.concurrency} at once: p50 ${fmtMs(a.p50Ms)}, p95 ${fmtMs(a.p95Ms)}, max ${fmtMs(a.maxMs)}, ${a.failures} failed, waves took ${fmtMs(a.wallMs)} in all; CPU of the server's process tree (reaped children included) ${fmtMs(a.serverCpuMs / Math.max(1, a.pushes))} per push${a.firstError ? ` (first error: ${a.firstError.replace(/\n/g, ' ')})` : ''}`);
    }
    for (const s of sides) {
      const x = r.storm.get(s);
      if (!x) continue;
      lines.push(
        `- push storm on ${label(s)}: ${x.pushes} pushes in ${fmtMs(x.pushWallMs)} (push p50 ${fmtMs(x.pushP50Ms)}, ${x.pushFailures} failed); ` +
          `repository right after the pushes: ${describeLayout(x.layoutAfterPushes)}; \`git fetch\` ${x.afterPushesMs.map((v) => fmtMs(v)).join(', ')} (most server git children running at a sample start: ${x.busyChildrenAfterPushes}); ` +
          `idle after ${fmtMs(x.idleWaitMs)}: ${describeLayout(x.layoutWhenIdle)}; \`git fetch\` ${x.whenIdleMs.map((v) => fmtMs(v)).join(', ')}; ` +
          `repack took ${fmtMs(x.repackMs)}, then: ${describeLayout(x.layoutAfterRepack)}; \`git fetch\` ${x.afterRepackMs.map((v) => fmtMs(v)).join(', ')}`,
      );
    }
    lines.push('');
  }
  if (r.api) {
    const a = r.api;
    lines.push('### API', '');
    lines.push(`- create repo, one at a time: ${a.creates} ok, ${a.createFailures} failed, p50 ${fmtMs(a.createP50Ms)}, p95 ${fmtMs(a.createP95Ms)}`);
    lines.push(`- populating the listed org: ${a.populated} repos created ${a.populateConcurrency} at once in ${fmtMs(a.populateWallMs)} (create p50 at that concurrency ${fmtMs(a.populateP50Ms)}, ${a.populateFailures} failed)`);
    lines.push(`- list a page of ${a.pageSize}, one request at a time, walking the cursor: ${a.lists} ok, ${a.listFailures} failed, p50 ${fmtMs(a.listP50Ms)}, p95 ${fmtMs(a.listP95Ms)}`);
    lines.push('');
  }
  lines.push('### Repositories', '');
  if (r.repo) {
    const g = r.repo;
    lines.push(`- generated: ${g.commits} commits (${g.merges} merge commits), ${g.branches} branches, ${g.annotatedTags} annotated + ${g.lightweightTags} lightweight tags, ${g.textFiles} text files, ${g.binaryFiles} binary files (${g.binaryBlobs} binary versions); fast-import stream ${fmtBytes(g.streamBytes)}, packed ${fmtBytes(g.packBytes)}`);
  }
  if (r.initialPushMs !== null) lines.push(`- initial push of the whole history to Grove: ${fmtMs(r.initialPushMs)}; mirror clone from Grove to the peer: ${r.mirrorMs !== null ? fmtMs(r.mirrorMs) : '—'}`);
  for (const s of sides) {
    const a = r.layoutInitial.get(s);
    const b = r.layoutPrepared.get(s);
    if (a && b) lines.push(`- ${label(s)}'s repository as received: ${describeLayout(a)}; after the preparatory repack: ${describeLayout(b)}`);
  }
  lines.push('');
  return lines.join('\n');
}

const METHOD = (r: Results): string => `## Method

One run starts both servers on 127.0.0.1 on this machine and measures them one after the
other on the same repository content; the harness runs nothing else meanwhile (other work
on the machine is not under its control: it waits up to 60 s for the machine to be quiet
and reports how busy it was). All traffic stays on
the loopback interface, every loop is bounded in count and time, and everything started
is stopped (and the temp dir removed) at the end, also on failure.

- **Workload repository.** Generated by a Node-written \`git fast-import\` stream
  (\`bench/workload.ts\`): ${r.mode.commits.toLocaleString('en-US')} commits on \`main\` and feature branches
  (200 text files edited a few lines per commit, a feature branch of 3 commits every 25
  steps merged back with a real merge commit 12 steps later, a release branch every 100
  steps, a tag every 20 steps, alternately annotated and lightweight, 6 binary files of
  32–160 KiB replaced with fresh random bytes every 150 steps), deterministic (fixed seed).
- **Grove** runs as a child process, \`grove serve --data <tmp> --listen 127.0.0.1:<port>\`
  with \`GROVE_ADMIN_TOKEN\` set and \`GROVE_LOG_LEVEL=error\`, default limits. It is
  ${r.groveBuild === 'package' ? 'the built package, as `npm install -g @grove/server` runs it: the harness runs `npm run build` first and starts `packages/server/bin/grove.js` by its shebang (compiled JavaScript, V8\'s young generation capped at 2 × 8 MiB)' : 'the clone\'s TypeScript sources (`node bin/grove.js`, `--source`): Node strips the types of every module as it loads, which costs memory the package does not'}.
  The repository \`bench/app\` is created through the API and the history pushed
  to it with \`git push\` (all branches and tags).
- **The peer** is \`git http-backend\` (${r.machine.git ?? 'git'}) behind nginx
  (${r.machine.nginx ?? '?'}, ${os.availableParallelism()} workers, keep-alive, \`fastcgi_buffering off\`)
  and fcgiwrap (\`fcgiwrap -c ${r.peerFcgiChildren || 32} -s unix:<sock>\`: ${r.peerFcgiChildren || 32} preforked
  workers, so it never serialises requests below that concurrency), run as the current
  user from a generated config in the temp dir, \`GIT_PROJECT_ROOT\`, \`GIT_HTTP_EXPORT_ALL\`,
  \`GIT_PROTOCOL\` passed from the \`Git-Protocol\` header, no authentication. Its repository
  is \`git clone --mirror\` of Grove's, with \`http.receivepack=true\` and Grove's durability
  and validation settings (\`core.fsync=committed,reference\`, \`core.fsyncMethod=fsync\`,
  \`receive.fsckObjects=true\`, \`pack.writeReverseIndex=true\`); its gc settings are git's
  defaults (\`receive.autogc\`, \`gc.auto=6700\`). Both servers advertise identical refs
  (checked with \`git ls-remote\`).
- **Same layout.** Before the read workloads, both repositories get the same
  \`git repack -adb --write-midx\` (one pack, bitmap, multi-pack-index), so the two
  servers read identical packs and the figures compare the servers, not the layout.
- **Protocol load** (\`bench/load-client.ts\`): a client that speaks protocol v2 itself
  over keep-alive HTTP/1.1, ${r.concurrency} connections, each carrying one request at a time
  (concurrency ${r.concurrency}). Transport \`${r.transport}\`${r.transport === 'raw' ? ': net sockets reading into one reused buffer, with a minimal HTTP/1.1 response parser (\`--client http\` uses a node:http keep-alive Agent with maxSockets = concurrency instead; on this 2-core machine it costs the client about six times more CPU per byte, which caps what any server can show)' : ': node:http with a keep-alive Agent, maxSockets = concurrency'}. Each
  workload first sends ${r.concurrency} unmeasured requests to each server (connections open, caches
  warm), then keeps ${r.concurrency} requests in flight for ${Object.values(r.mode.loadSeconds).join('/')} s per server, split
  into ${r.mode.loadRounds} rounds in which the servers alternate (Grove, peer, peer, Grove, …), so that any
  other work on the machine weighs on both alike; the rounds are summed. Every response is read to the end and validated
  (HTTP 200 and content type, pkt-line framing, final flush, sections, \`PACK\` header in
  side-band 1, no side-band 3 error); req/s = good responses ÷ wall time. After each
  workload, the same client runs for 3 s against a trivial server replaying Grove's
  recorded response (the client ceiling, in the details). The requests are
  framed as git 2.39 frames them:
  - \`ls-refs\`: POST \`git-upload-pack\` with \`command=ls-refs\`, \`agent\`, \`object-format=sha1\`,
    delim, \`peel\`, \`symrefs\`, \`unborn\`, \`ref-prefix HEAD\`, \`ref-prefix refs/heads/\`,
    \`ref-prefix refs/tags/\`, flush (what \`git clone\` sends);
  - info/refs: GET \`info/refs?service=git-upload-pack\` with \`Git-Protocol: version=2\`;
  - shallow clone: POST \`command=fetch\`, delim, \`ofs-delta\`, \`no-progress\`, \`deepen 1\`,
    \`want <main tip>\`, \`done\`, flush;
  - full clone of one commit: the same without \`deepen\` (the whole history of \`main\`).
- **Server memory during ${r.mode.rssClones} concurrent clones** (and ${r.mode.rssClonesGrove} on Grove alone): the protocol
  client sends that many full-clone fetches at once (one connection each); every 50 ms the
  harness sums the PSS (\`/proc/<pid>/smaps_rollup\`: resident pages, a page shared by n
  processes counted 1/n in each) of the server's own processes: Grove's node process and its
  git launcher, or nginx and fcgiwrap's workers (every process of the tree that is not git).
  PSS and not RSS, because both servers are several processes sharing code pages, which RSS
  would count once per process. "With git children" adds the RSS of every git process under
  them. Idle memory is measured right after Grove starts: the RSS of its node process alone,
  and the PSS of it with its launcher.
- **Single full clone**: \`git clone\` (with checkout) of the repository, ${r.mode.cloneSamples} times per server,
  the servers alternating; the median wall time of the git process.
- **${r.mode.agents} agents**: ${r.mode.agents} commits made beforehand (one per agent, each on top of \`main\` adding
  its own file), then ${r.mode.agents} \`git push <url> <commit>:refs/heads/agent/<i>\` processes,
  ${r.mode.agentConcurrency} running at once, in waves of ${r.mode.agentConcurrency} with the servers alternating wave by wave;
  latency of each push process, failures = non-zero exits.
- **The harness's git clients** (every \`git clone\`, \`commit\`, \`push\` and \`fetch\` below)
  stand in for clients on other machines: they run at niceness 10, so that on this one machine
  both servers get the CPU before their clients, and keep their checkouts on ${r.clientDir},
  not on the servers' disk. On this machine's ext4 root, creating a small file costs about
  1 ms (0.04 ms on tmpfs), which would otherwise make every clone's checkout the figure.
- **Where a push's time goes**: before and after the agent pushes, the small pushes and the
  fleet run, the harness reads Grove's \`/metrics\`; the differences of
  \`grove_git_push_phase_seconds\`, \`grove_git_processes_started\`,
  \`grove_git_process_start_seconds\` and \`grove_ref_transactions\` give the mean time per
  phase, the git processes per push and the pushes per ref transaction (in the details).
- **The fleet run**: ${r.mode.fleetAgents} agents, ${r.mode.fleetConcurrency} at once, each \`git clone --depth 1 --single-branch
  --branch main\` of the repository, a commit of a file of its own, and \`git push origin
  HEAD:refs/heads/fleet/<i>\`; every step timed, failures = any non-zero exit. Grove's fleet
  runs first, then the peer's (each against its own copy of the repository). Meanwhile one
  more client sends, one at a time, every 20 ms, an \`ls-refs\`, a
  \`GET /api/v1/repos/bench/app/branches/main\` and a \`GET …/contents/README.md?ref=main\` (the
  peer gets the \`ls-refs\` only: it has no API) and records each one's latency.
- **Fair share under a runaway key** (Grove only): half of ${r.mode.fairnessAgents} agents push a new branch
  each, all at once, with the bench's admin token; then one read key opens ${r.mode.fairnessClones} raw
  protocol-v2 full fetches of one commit at once and keeps them in flight, and after 2 s the
  other half of the agents push the same way. The figure is their push p95 beside the
  runaway divided by the p95 alone.
- **Fetch after small pushes vs. freshly repacked**: ${r.mode.stormPushes.toLocaleString('en-US')} tiny commits in ${r.mode.stormLanes} chains
  (one file changed each) are pushed one \`git push\` each, the ${r.mode.stormLanes} branches in parallel and
  each branch in order${r.mode.name === 'quick' ? ' (quick mode pushes 300, not 2,000; `--full` pushes 2,000)' : ''}. Before the very last push a clone is made; then
  \`git fetch origin\` into fresh copies of that clone (up to date minus one push) is timed
  ${r.mode.fetchSamples} times right after that last push ("right after"; Grove may be running its own
  maintenance then, and the number of git children it had running is in the details). Then
  the harness waits (at most 120 s) for the server to have no git child (Grove) or no
  \`gc.pid\` (the peer) and times the fetch again ("once idle"). Then \`git repack -adb
  --write-midx\` runs on the repository directory and the fetch is timed a third time
  ("after repack"). The target compares each server with itself: right after the pushes
  ÷ after the repack.
- **API** (Grove only): ${r.mode.creates} \`POST /api/v1/orgs/{org}/repos\` one after the other (p50);
  then an org is filled with ${r.mode.orgRepos.toLocaleString('en-US')} repositories through the API (${r.concurrency} at once)${r.mode.name === 'quick' ? ' — quick mode uses 2,000, not 10,000; `--full` uses 10,000 —' : ''}
  and ${r.mode.lists} \`GET /api/v1/orgs/{org}/repos?limit=100\` requests walk its pages by cursor,
  one at a time (p50).
- **Ratios** are Grove ÷ peer of the figure in the row, so for throughput rows > 1 means
  Grove is better and for latency, time and memory rows < 1 means Grove is better (the
  "better is" column). Absolute numbers depend on this machine; the ratios are the
  figures.
`;

export function markdown(r: Results, table: Row[]): string {
  const notMet = table.filter((row) => verdict(row) === 'not met' || verdict(row) === 'not measured');
  const when = r.started.toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
  const out: string[] = [];
  out.push('# Benchmarks', '');
  out.push(
    `Generated by \`npm run bench\` (\`node bench/run.ts --${r.mode.name}\`) on ${when}; the run took ${fmtMs(r.durationMs)}.`,
    'This file is rewritten by every run that is not given `--no-write`. Grove is compared with',
    '`git http-backend` behind nginx + fcgiwrap, side by side in the same run on the same',
    'repositories; the targets are those of issue 10 (fleet performance II) and the remaining ones of issue 5.',
    '',
  );
  if (!r.peerAvailable) out.push(`**The peer was not measured: ${r.peerMessage}.** Ratios are missing.`, '');
  out.push('## Results', '');
  out.push(markdownTable(table, r.peerAvailable), '');
  out.push('## Targets not met', '');
  if (notMet.length === 0) out.push('None: every target is met in this run.', '');
  else {
    for (const row of notMet) {
      const ratio = ratioOf(row);
      const measured = row.noRatio || row.target?.on === 'grove' ? `Grove ${row.groveText ?? (row.grove === null ? 'n/a' : row.unit === 'x' ? `${row.grove.toFixed(2)}x` : `${row.grove.toFixed(1)} ${row.unit}`)}` : `ratio ${ratio === null ? 'n/a' : `${ratio.toFixed(2)}x`}`;
      const op = ROW_OPS.get(row.workload);
      const ceiling = op ? r.load.get(key('ceiling', op)) : undefined;
      const bound = ceiling && row.grove !== null && ceiling.rps > 0 ? row.grove / ceiling.rps : null;
      let note = bound !== null ? ` Grove reached ${(bound * 100).toFixed(0)}% of the client ceiling (${ceiling!.rps.toFixed(0)} req/s)${bound >= 0.7 ? ', so this figure is limited by the harness sharing the machine, and the ratio is a lower bound' : ''}.` : '';
      const peerLoad = op ? r.load.get(key('peer', op)) : undefined;
      const needed = /^>= (\d+(?:\.\d+)?)x/.exec(row.target?.text ?? '');
      if (ceiling && peerLoad && peerLoad.rps > 0 && needed) {
        const most = ceiling.rps / peerLoad.rps;
        if (most < Number(needed[1])) note += ` Even a server that cost nothing could show at most ${most.toFixed(1)}x here (client ceiling ÷ peer), so this target cannot be shown on this machine with this client.`;
      }
      out.push(`- ${row.workload.trim()}: ${verdict(row)}; target ${row.target?.text}, measured ${measured}.${note}`);
    }
    out.push('');
  }
  const busiest = [...r.load.values()].reduce((m, l) => Math.max(m, l.machineBusyPercent), 0);
  if (r.problems.length > 0) {
    out.push('## Problems seen during the run', '');
    for (const p of r.problems) out.push(`- ${p.replace(/\n/g, ' ')}`);
    out.push('');
  }
  if (r.groveLogTail) {
    const tail = r.groveLogTail.split('\n').slice(-15).map((l) => (l.length > 400 ? `${l.slice(0, 400)}…` : l));
    out.push("## Grove's log during the run (level error)", '', 'Its last lines (Grove ran with `GROVE_LOG_LEVEL=error`, so anything here is an error it logged):', '', '```', ...tail, '```', '');
  }
  out.push('## Cluster', '', 'A three-node cluster (PostgreSQL + an object store) against one embedded node: `node --conditions=grove-source bench/cluster.ts`; its figures, the targets and why two are not met are in docs/scale-out.md ("Measured").', '');
  out.push('## Large files', '', 'One file of 1 GiB (random bytes) pushed and cloned through Grove and the peer, then read by `Range` from Grove\'s chunk store: `node --conditions=grove-source bench/large.ts [--size=MiB] [--versions=N] [--edit=rewrite|insert] [--no-concurrent]`. Last runs (2026-12-03, big blobs evicted from git and spliced into every clone): at 1 GiB push 0.32x the peer, full clone 0.43x, `--depth 1` clone 0.44x, 8 clones at once 0.45x, ingest 106 MiB/s, evicted 10.3 s after the push, 1 MiB `Range` p50 5.6 ms / p99 47 ms (1 client); at 2 GiB push 0.31x, clones 0.43x / 0.45x; at 4 GiB push 0.33x, clones 0.43x / 0.45x, ingest 109 MiB/s, `Range` p50 5.7 ms / p99 33 ms; ten versions of 1 GiB on disk 1.12 GiB (1% rewritten each) and 1.02 GiB (small insertions) against 10.00 GiB for the peer. The method, every figure and the targets of issue 13 are in docs/large-files.md ("Measured").', '');
  out.push('## Machine', '');
  for (const [k, v] of Object.entries(r.machine)) out.push(`- ${k}: ${v}`);
  out.push(`- machine busy before the run (1 s sample, all cores): ${Number.isFinite(r.busyBeforePercent) ? `${r.busyBeforePercent.toFixed(0)}%` : 'n/a'}; busiest protocol-load run: ${busiest.toFixed(0)}%`);
  out.push(`- mode: ${r.mode.name}, concurrency ${r.concurrency}, load client transport ${r.transport}`);
  out.push('');
  out.push(METHOD(r));
  out.push('## Details', '');
  out.push(details(r));
  out.push('## Running it', '');
  out.push('```sh', 'npm run bench              # quick mode (the default): a few minutes on 2 cores', 'npm run bench -- --full    # 5,000 commits, 2,000 pushes, an org of 10,000 repos, longer load runs', 'npm run bench -- --only agents,fleet --cpu-prof   # some workloads (not written here), with a CPU profile of Grove', 'node bench/run.ts --no-peer --no-write   # Grove alone, without touching this file', '```', '');
  out.push(
    'The harness needs git, and for the peer `/usr/sbin/nginx` and `/usr/sbin/fcgiwrap`',
    '(Debian packages `nginx` and `fcgiwrap`); when they are missing and it runs as root it',
    'installs them with `apt-get install -y nginx fcgiwrap`, otherwise it says so and measures',
    'Grove alone.',
    '',
  );
  return out.join('\n');
}

