/**
 * The install path a user takes first: both workspaces packed as npm would publish them,
 * installed into a scratch project outside the repository, then used from plain JavaScript,
 * from type-checked TypeScript, and as the `grove` command of a global install (and npx).
 * Dependencies come from the npm registry (or npm's cache, which `npm ci` has just filled).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './helpers/cli.ts';
import { daemonEnv, startDaemon, stopDaemon } from './helpers/daemon.ts';
import { auth, commitFile, gitOk, initWorkRepo } from './helpers/git.ts';

const TOKEN = 'grove_packaging_admin_token_0123456789';
/** npm from the PATH (its `#!/usr/bin/env node` then finds this Node first, see run()). */
const NPM = 'npm';

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command with this Node first on PATH; never throws for a non-zero exit. */
function run(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}, timeoutMs = 240_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const childEnv = { ...daemonEnv(), PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`, npm_config_update_notifier: 'false', ...env };
    execFile(command, [...args], { cwd, env: childEnv, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') return reject(error);
      resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}

async function ok(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const result = await run(command, args, cwd, env);
  assert.equal(result.code, 0, `${command} ${args.join(' ')} exited ${result.code}:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

const NPM_INSTALL_FLAGS = ['--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'];
/** The other runtimes the SDK promises, from the npm registry (each ships its binary in a platform package). */
const BUN_VERSION = '1.4.5';
const DENO_VERSION = '2.9.6';

/** What an agent platform does first with the SDK: set up an org, commit without a clone, read it back, mint a signed token and use it. */
const SMOKE_SCRIPT = `
import { Grove, mintToken, GroveApiError } from '@grove/sdk';
const baseUrl = process.env.GROVE_URL;
const grove = new Grove({ baseUrl, token: process.env.GROVE_TOKEN });
const org = process.env.SMOKE_ORG;
await grove.orgs.create({ name: org });
await grove.repos.create(org, { name: 'app' });
const commit = await grove.commits.create(org, 'app', { branch: 'main', message: 'first', files: [{ path: 'a.txt', content: 'hello\\n' }] });
const text = await grove.contents.getText(org, 'app', 'a.txt', { ref: 'main' });
const pair = await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
await grove.signingKeys.create(org, { publicKey: await crypto.subtle.exportKey('jwk', pair.publicKey), name: 'orchestrator' });
const agent = new Grove({ baseUrl, token: await mintToken({ privateKey: pair.privateKey, scope: 'read', resources: [{ org }] }) });
const branch = await agent.branches.get(org, 'app', 'main');
let refused = null;
try { await agent.repos.create(org, { name: 'other' }); } catch (error) { refused = error instanceof GroveApiError ? error.code : String(error); }
console.log(JSON.stringify({ text, sameCommit: branch.sha === commit.sha, refused }));
`;

describe('the published packages, installed as a user installs them', () => {
  let scratch: string;
  let sdkTarball: string;
  let serverTarball: string;
  /** A scratch project with the SDK tarball, TypeScript, Node typings, Bun and Deno installed. */
  let project: string;
  /** The `grove` command of a global install of both tarballs. */
  let groveCommand: string;

  before(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'grove-packaging-'));
    const packs = path.join(scratch, 'packs');
    await mkdir(packs);
    // npm pack runs each package's prepack (the tsc build into dist/), as publishing would.
    await ok(NPM, ['pack', '--silent', '-w', 'packages/sdk', '-w', 'packages/server', '--pack-destination', packs], ROOT);
    const files = await readdir(packs);
    sdkTarball = path.join(packs, files.find((f) => f.startsWith('grove-sdk-'))!);
    serverTarball = path.join(packs, files.find((f) => f.startsWith('grove-server-'))!);
    const lock = JSON.parse(await readFile(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string }> };
    const typescript = `typescript@${lock.packages['node_modules/typescript']!.version}`;
    const typesNode = `@types/node@${lock.packages['node_modules/@types/node']!.version}`;
    project = path.join(scratch, 'app');
    await mkdir(project);
    await writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'scratch-app', private: true, type: 'module' }));
    await ok(NPM, ['install', ...NPM_INSTALL_FLAGS, sdkTarball, typescript, typesNode, `bun@${BUN_VERSION}`, `deno@${DENO_VERSION}`], project);
    const prefix = path.join(scratch, 'global');
    await ok(NPM, ['install', '--global', '--prefix', prefix, ...NPM_INSTALL_FLAGS, sdkTarball, serverTarball], scratch);
    groveCommand = path.join(prefix, 'bin', 'grove');
  });
  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('packs the SDK as built JavaScript with declarations and source maps, and nothing else', async () => {
    const listing = await ok('tar', ['tzf', sdkTarball], scratch);
    const files = listing.trim().split('\n').map((f) => f.replace(/^package\//, '')).sort();
    assert.ok(files.includes('dist/index.js') && files.includes('dist/index.d.ts') && files.includes('dist/index.js.map'), listing);
    assert.deepEqual(files.filter((f) => !f.startsWith('dist/')), ['CHANGELOG.md', 'README.md', 'package.json']);
    assert.ok(!files.some((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')), 'a TypeScript source was packed');
    const manifest = JSON.parse(await ok('tar', ['xzOf', sdkTarball, 'package/package.json'], scratch)) as { dependencies?: object };
    assert.equal(manifest.dependencies, undefined, 'the SDK must keep zero runtime dependencies');
  });

  it('keeps the SDK free of Node-only modules, so it runs wherever fetch and WebCrypto exist', async () => {
    const dir = path.join(scratch, 'sdk-contents');
    await mkdir(dir);
    await ok('tar', ['xzf', sdkTarball, '-C', dir], scratch);
    for (const file of await readdir(path.join(dir, 'package/dist'))) {
      if (!file.endsWith('.js') && !file.endsWith('.d.ts')) continue;
      const text = await readFile(path.join(dir, 'package/dist', file), 'utf8');
      assert.doesNotMatch(text, /from ['"]node:|require\(/, `${file} imports a Node module`);
    }
  });

  it('imports the installed SDK from an .mjs file and from TypeScript checked by tsc, in Node and in browser typings', async () => {
    await writeFile(path.join(project, 'use.mjs'), [
      "import { Grove, GroveApiError, mintToken, verifyWebhook } from '@grove/sdk';",
      "const grove = new Grove({ baseUrl: 'http://127.0.0.1:1', token: 't' });",
      "console.log(JSON.stringify([typeof Grove, typeof GroveApiError, typeof mintToken, typeof verifyWebhook, typeof grove.repos.create]));",
    ].join('\n'));
    assert.equal((await ok(process.execPath, ['use.mjs'], project)).trim(), '["function","function","function","function","function"]');

    await writeFile(path.join(project, 'node.ts'), [
      "import { generateKeyPairSync } from 'node:crypto';",
      "import { Grove, GroveApiError, mintToken, type Repo, type CreatedApiKey } from '@grove/sdk';",
      "const grove = new Grove({ baseUrl: 'http://127.0.0.1:8080', token: process.env.GROVE_TOKEN ?? '' });",
      "export async function setUp(): Promise<[Repo, CreatedApiKey, string]> {",
      "  const { privateKey, publicKey } = generateKeyPairSync('ed25519');",
      "  await grove.signingKeys.create('acme', { publicKey: publicKey.export({ format: 'jwk' }), name: 'orchestrator' });",
      "  const token = await mintToken({ privateKey: privateKey.export({ format: 'jwk' }), scope: 'write', resources: [{ org: 'acme', repo: 'app', branches: ['agent-1/*'] }], ttl: '1h' });",
      "  const repo = await grove.repos.create('acme', { name: 'app' });",
      "  const key = await grove.apiKeys.create({ scope: 'read', resources: [{ org: 'acme', repo: 'app' }], ttl: '10m' });",
      "  return [repo, key, token];",
      "}",
      "export function isStale(error: unknown): boolean { return error instanceof GroveApiError && error.code === 'stale_ref'; }",
      "// @ts-expect-error the SDK's types are real: a misspelt method does not type-check",
      "grove.repos.creat('acme', { name: 'x' });",
    ].join('\n'));
    await writeFile(path.join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, skipLibCheck: false, types: ['node'] },
      files: ['node.ts'],
    }));
    await ok(process.execPath, [path.join(project, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], project);

    // A browser or Deno project: DOM typings, no Node typings at all.
    await writeFile(path.join(project, 'browser.ts'), [
      "import { Grove, type FileContent } from '@grove/sdk';",
      "const grove = new Grove({ baseUrl: location.origin, token: 'grove_x' });",
      "export const readme: Promise<FileContent> = grove.contents.getFile('acme', 'app', 'README.md', { ref: 'main' });",
    ].join('\n'));
    await writeFile(path.join(project, 'tsconfig.browser.json'), JSON.stringify({
      compilerOptions: { target: 'es2022', module: 'esnext', moduleResolution: 'bundler', lib: ['es2022', 'dom'], strict: true, noEmit: true, skipLibCheck: false, types: [] },
      files: ['browser.ts'],
    }));
    await ok(process.execPath, [path.join(project, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.browser.json'], project);
  });

  it('installs the server globally as a grove command that serves, administers and takes a git push', async () => {
    const grove = groveCommand;
    const env = daemonEnv({ GROVE_ADMIN_TOKEN: TOKEN, GROVE_LOG_LEVEL: 'warn' });
    const version = JSON.parse(await readFile(path.join(ROOT, 'packages/server/package.json'), 'utf8')).version as string;
    assert.equal((await ok(grove, ['--version'], scratch, env)).trim(), version);

    const daemon = await startDaemon({ dataDir: path.join(scratch, 'data'), env, bin: grove, executable: true });
    try {
      const client = { GROVE_URL: daemon.url, GROVE_TOKEN: TOKEN };
      await ok(grove, ['org', 'create', 'acme'], scratch, client);
      await ok(grove, ['repo', 'create', 'acme/app'], scratch, client);
      const work = path.join(scratch, 'work');
      await initWorkRepo(work);
      const sha = await commitFile(work, 'README.md', '# app\n', 'first');
      await gitOk([...auth(TOKEN), 'push', `${daemon.url}/acme/app.git`, 'HEAD:refs/heads/main'], { cwd: work });
      const clone = path.join(scratch, 'clone');
      await gitOk([...auth(TOKEN), 'clone', '-q', `${daemon.url}/acme/app.git`, clone]);
      assert.equal((await gitOk(['rev-parse', 'HEAD'], { cwd: clone })).trim(), sha);
      assert.equal(await readFile(path.join(clone, 'README.md'), 'utf8'), '# app\n');
    } finally {
      assert.deepEqual(await stopDaemon(daemon), { code: 0, signal: null }, daemon.output());
    }
  });

  it('drives the installed server with the installed SDK from Node, Bun and Deno alike', async () => {
    await writeFile(path.join(project, 'smoke.mjs'), SMOKE_SCRIPT);
    const env = daemonEnv({ GROVE_ADMIN_TOKEN: TOKEN, GROVE_LOG_LEVEL: 'warn' });
    const daemon = await startDaemon({ dataDir: path.join(scratch, 'runtimes-data'), env, bin: groveCommand, executable: true });
    try {
      const bin = path.join(project, 'node_modules/.bin');
      const runtimes: [string, string, string[]][] = [
        ['node', process.execPath, ['smoke.mjs']],
        ['bun', path.join(bin, 'bun'), ['smoke.mjs']],
        ['deno', path.join(bin, 'deno'), ['run', '--allow-net', '--allow-env', '--allow-read', 'smoke.mjs']],
      ];
      for (const [name, command, args] of runtimes) {
        const out = await ok(command, args, project, { GROVE_URL: daemon.url, GROVE_TOKEN: TOKEN, SMOKE_ORG: `from-${name}`, DENO_NO_UPDATE_CHECK: '1' });
        assert.deepEqual(JSON.parse(out.trim().split('\n').pop()!), { text: 'hello\n', sameCommit: true, refused: 'forbidden' }, name);
      }
    } finally {
      assert.deepEqual(await stopDaemon(daemon), { code: 0, signal: null }, daemon.output());
    }
  });

  it('runs the server package through npx', async () => {
    const result = await ok(NPM, ['exec', '--yes', ...NPM_INSTALL_FLAGS, `--package=${sdkTarball}`, `--package=${serverTarball}`, '--', 'grove', 'serve', '--help'], scratch);
    assert.match(result, /run the server/);
  });
});
