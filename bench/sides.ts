/**
 * The two sides of a run, set up on the same repository: Grove (the built package's `grove`
 * command, or the clone's sources with --source) with the history pushed to it through its
 * API and git, and the peer serving a mirror of it; plus what the run records about the
 * machine.
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Side } from './e2e.ts';
import { httpRequest, startGrove, startPeer, type GroveServer, type PeerServer } from './servers.ts';
import { fmtBytes, gitOk, processTree, run, runOk, sleep } from './util.ts';

/** How busy the whole machine is over `ms`, in percent of all cores (from /proc/stat). */
export async function machineBusyPercent(ms: number): Promise<number> {
  const read = (): [number, number] => {
    const f = readFileSync('/proc/stat', 'latin1').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    return [total - (f[3] ?? 0) - (f[4] ?? 0), total];
  };
  try {
    const [b0, t0] = read();
    await sleep(ms);
    const [b1, t1] = read();
    return t1 > t0 ? ((b1 - b0) / (t1 - t0)) * 100 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

export async function machineInfo(projectRoot: string, tmp: string, peer: PeerServer | null, groveBuild: string): Promise<Record<string, string>> {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const nproc = (await run('nproc', [], { timeoutMs: 5000 }).catch(() => null))?.stdout.trim() || String(os.availableParallelism());
  const gitVersion = (await run('git', ['--version'], { timeoutMs: 5000 })).stdout.trim();
  const debian = existsSync('/etc/debian_version') ? `Debian ${readFileSync('/etc/debian_version', 'utf8').trim()}` : os.type();
  const df = await run('df', ['-PT', tmp], { timeoutMs: 5000 }).catch(() => null);
  const fs = df?.stdout.trim().split('\n')[1]?.split(/\s+/)[1] ?? 'unknown';
  const head = (await run('git', ['-C', projectRoot, 'rev-parse', '--short', 'HEAD'], { timeoutMs: 10_000 }).catch(() => null))?.stdout.trim() ?? '';
  const dirty = (await run('git', ['-C', projectRoot, 'status', '--porcelain', '--', 'packages', 'bin'], { timeoutMs: 30_000 }).catch(() => null))?.stdout.trim() ?? '';
  return {
    'Grove under test': `${head ? `commit ${head}${dirty ? ' with uncommitted changes in packages/ or bin/' : ''}` : 'unknown (not a git checkout)'}, ${groveBuild}`,
    'nproc': nproc,
    'memory': fmtBytes(os.totalmem()),
    'CPU': model,
    'OS': `${debian}, Linux ${os.release()}`,
    'git': gitVersion,
    'node': process.version,
    'nginx': peer?.nginxVersion ?? 'not used',
    'temp dir filesystem': `${fs} (${os.tmpdir()})`,
  };
}

export interface GroveSetup {
  readonly server: GroveServer;
  readonly side: Side;
  /** The repository's API base: `${url}/api/v1/repos/bench/app`. */
  readonly apiBase: string;
  readonly initialPushMs: number;
}

/** Builds the packages unless running sources; returns the `grove` command and how to start it. */
export async function groveCommand(projectRoot: string, source: boolean): Promise<{ bin: string; executable: boolean; label: string }> {
  if (source) return { bin: path.join(projectRoot, 'bin/grove.js'), executable: false, label: 'the clone\'s TypeScript sources (node bin/grove.js)' };
  await runOk('npm', ['run', 'build', '--silent'], { cwd: projectRoot, timeoutMs: 300_000 });
  return { bin: path.join(projectRoot, 'packages/server/bin/grove.js'), executable: true, label: 'the built package (packages/server/bin/grove.js, as `npm install -g` runs it)' };
}

export async function setUpGrove(
  projectRoot: string,
  dataDir: string,
  command: { bin: string; executable: boolean },
  sourceRepo: string,
  extraEnv: Readonly<Record<string, string>>,
): Promise<GroveSetup> {
  const token = `grove_bench_${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  const server = await startGrove(projectRoot, dataDir, token, { env: extraEnv, bin: command.bin, executable: command.executable });
  const api = `${server.url}/api/v1`;
  const headers = { ...server.authHeaders, Accept: 'application/json' };
  const org = await httpRequest(undefined, `${api}/orgs`, { method: 'POST', headers, body: JSON.stringify({ name: 'bench' }) });
  if (org.status !== 201) throw new Error(`create org: HTTP ${org.status} ${org.body}`);
  const repo = await httpRequest(undefined, `${api}/orgs/bench/repos`, { method: 'POST', headers, body: JSON.stringify({ name: 'app', defaultBranch: 'main' }) });
  if (repo.status !== 201) throw new Error(`create repo: HTTP ${repo.status} ${repo.body}`);
  const repoDir = await server.repoDir((JSON.parse(repo.body) as { id: string }).id);
  const gitAuth = ['-c', `http.extraHeader=Authorization: Bearer ${token}`];
  const side: Side = {
    name: 'grove',
    label: 'Grove',
    repoUrl: `${server.url}/bench/app.git`,
    gitAuth,
    headers: server.authHeaders,
    repoDir,
    rootPids: [server.pid],
    // The launcher process is always there: count the git processes only.
    busyChildren: () => processTree([server.pid]).filter((pid) => isGitProcess(pid)).length,
    async waitIdle(maxMs = 30_000) {
      // Idle = no git child (its own maintenance included) for 3 samples in a row.
      const deadline = Date.now() + maxMs;
      let quiet = 0;
      while (Date.now() < deadline && quiet < 3) {
        quiet = processTree([server.pid]).some((pid) => isGitProcess(pid)) ? 0 : quiet + 1;
        await sleep(100);
      }
    },
  };
  const started = performance.now();
  await gitOk([...gitAuth, 'push', '-q', side.repoUrl, 'refs/heads/*:refs/heads/*', 'refs/tags/*:refs/tags/*'], { cwd: sourceRepo, timeoutMs: 600_000 });
  return { server, side, apiBase: `${api}/repos/bench/app`, initialPushMs: performance.now() - started };
}

function isGitProcess(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'latin1').startsWith('git');
  } catch {
    return false;
  }
}

export interface PeerSetup {
  readonly server: PeerServer;
  readonly side: Side;
  readonly mirrorMs: number;
}

export async function setUpPeer(dir: string, httpBackend: string, fcgiChildren: number, grove: Side): Promise<PeerSetup> {
  const server = await startPeer(dir, path.join(dir, 'root'), httpBackend, fcgiChildren);
  const repoDir = path.join(server.projectRoot, 'bench', 'app.git');
  const started = performance.now();
  await gitOk([...grove.gitAuth, 'clone', '-q', '--mirror', grove.repoUrl, repoDir], { timeoutMs: 600_000 });
  const mirrorMs = performance.now() - started;
  await gitOk(['config', '--remove-section', 'remote.origin'], { cwd: repoDir });
  // Same durability and validation as Grove's repositories; stock gc behaviour otherwise.
  for (const [k, v] of [
    ['http.receivepack', 'true'],
    ['core.fsync', 'committed,reference'],
    ['core.fsyncMethod', 'fsync'],
    ['receive.fsckObjects', 'true'],
    ['pack.writeReverseIndex', 'true'],
  ] as const) {
    await gitOk(['config', k, v], { cwd: repoDir });
  }
  const side: Side = {
    name: 'peer',
    label: 'peer',
    repoUrl: `${server.url}/bench/app.git`,
    gitAuth: [],
    headers: {},
    repoDir,
    rootPids: [server.nginxPid, server.fcgiwrapPid],
    busyChildren: () => (existsSync(path.join(repoDir, 'gc.pid')) ? 1 : 0),
    async waitIdle(maxMs = 60_000) {
      const deadline = Date.now() + maxMs;
      while (Date.now() < deadline && existsSync(path.join(repoDir, 'gc.pid'))) await sleep(200);
    },
  };
  return { server, side, mirrorMs };
}
