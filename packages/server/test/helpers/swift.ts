/**
 * A real S3 implementation for tests: OpenStack Swift from Debian (`swift-proxy`,
 * `swift-object`, `swift-container`, `swift-account`, `memcached`) with its s3api
 * middleware, single node and one replica, in a temp directory on free loopback ports
 * (scale-out.md §5.1 and Appendix A). S3 credentials are tempauth's `test:tester` / `testing`.
 * `.ci/run` installs the packages; without them the tests that need S3 skip.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { freePort } from './ports.ts';

const BINARIES = ['swift-proxy-server', 'swift-object-server', 'swift-container-server', 'swift-account-server', 'swift-ring-builder', 'memcached'];

function which(name: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/bin').split(':').concat('/usr/bin', '/usr/sbin')) if (existsSync(path.join(dir, name))) return path.join(dir, name);
  return null;
}

export function swiftAvailable(): boolean {
  return BINARIES.every((name) => which(name) !== null);
}

export class SwiftS3 {
  readonly endpoint: string;
  readonly accessKeyId = 'test:tester';
  readonly secretAccessKey = 'testing';
  readonly #root: string;
  readonly #children: ChildProcess[];
  #output = '';
  /** The proxy (the S3 endpoint) and how to start it again. */
  #proxy: { child: ChildProcess; start: () => ChildProcess } | null = null;

  private constructor(endpoint: string, root: string, children: ChildProcess[]) {
    this.endpoint = endpoint;
    this.#root = root;
    this.#children = children;
  }

  /** The environment a Grove node needs to use bucket `bucket` of this server. */
  env(bucket: string, prefix = 'grove'): Record<string, string> {
    return {
      GROVE_OBJECT_STORE: `s3://${bucket}/${prefix}`,
      GROVE_S3_ENDPOINT: this.endpoint,
      GROVE_S3_REGION: 'us-east-1',
      GROVE_S3_FORCE_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: this.accessKeyId,
      AWS_SECRET_ACCESS_KEY: this.secretAccessKey,
    };
  }

  static async start(): Promise<SwiftS3> {
    const root = await mkdtemp(path.join(os.tmpdir(), 'grove-swift-'));
    const etc = path.join(root, 'etc');
    const devices = path.join(root, 'srv');
    await mkdir(etc, { recursive: true });
    await mkdir(path.join(devices, 'd1'), { recursive: true });
    const [account, container, object, proxy, memcache] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    const user = os.userInfo().username;
    await writeFile(path.join(etc, 'swift.conf'), '[swift-hash]\nswift_hash_path_suffix = grove-test\nswift_hash_path_prefix = grove-test\n\n[storage-policy:0]\nname = gold\ndefault = yes\n');
    for (const [kind, port] of [['account', account], ['container', container], ['object', object]] as const) {
      const builder = path.join(etc, `${kind}.builder`);
      execFileSync('swift-ring-builder', [builder, 'create', '8', '1', '1'], { stdio: 'ignore' });
      execFileSync('swift-ring-builder', [builder, 'add', `r1z1-127.0.0.1:${port}/d1`, '1'], { stdio: 'ignore' });
      execFileSync('swift-ring-builder', [builder, 'rebalance'], { stdio: 'ignore' });
      await writeFile(path.join(etc, `${kind}-server.conf`), [
        '[DEFAULT]', `devices = ${devices}`, 'mount_check = false', 'bind_ip = 127.0.0.1', `bind_port = ${port}`, 'workers = 1',
        `swift_dir = ${etc}`, `user = ${user}`, 'log_level = ERROR', '',
        '[pipeline:main]', `pipeline = ${kind}-server`, '', `[app:${kind}-server]`, `use = egg:swift#${kind}`, '',
      ].join('\n'));
    }
    await writeFile(path.join(etc, 'proxy-server.conf'), [
      '[DEFAULT]', 'bind_ip = 127.0.0.1', `bind_port = ${proxy}`, 'workers = 1', `swift_dir = ${etc}`, `user = ${user}`, 'log_level = ERROR', '',
      '[pipeline:main]',
      'pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo proxy-logging proxy-server', '',
      '[app:proxy-server]', 'use = egg:swift#proxy', 'account_autocreate = true', '',
      '[filter:s3api]', 'use = egg:swift#s3api', '',
      '[filter:tempauth]', 'use = egg:swift#tempauth', 'user_test_tester = testing .admin', '',
      '[filter:cache]', 'use = egg:swift#memcache', `memcache_servers = 127.0.0.1:${memcache}`, '',
      ...['catch_errors', 'gatekeeper', 'healthcheck', 'proxy_logging', 'listing_formats', 'bulk', 'copy', 'slo', 'dlo'].flatMap((name) => [`[filter:${name.replace('_logging', '-logging')}]`, `use = egg:swift#${name}`, '']),
    ].join('\n'));
    const children: ChildProcess[] = [];
    const swift = new SwiftS3(`http://127.0.0.1:${proxy}`, root, children);
    const start = (file: string, args: string[]) => {
      // A group of its own: Swift's servers fork workers, which must go with them.
      const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      child.stdout!.on('data', (chunk: Buffer) => (swift.#output += chunk.toString()));
      child.stderr!.on('data', (chunk: Buffer) => (swift.#output += chunk.toString()));
      children.push(child);
      return child;
    };
    start('memcached', ['-l', '127.0.0.1', '-p', String(memcache), '-U', '0', '-u', user]);
    for (const kind of ['account', 'container', 'object']) start(`swift-${kind}-server`, [path.join(etc, `${kind}-server.conf`)]);
    const startProxy = () => start('swift-proxy-server', [path.join(etc, 'proxy-server.conf')]);
    swift.#proxy = { child: startProxy(), start: startProxy };
    const deadline = Date.now() + 30_000;
    for (;;) {
      // The proxy's healthcheck says nothing of the storage servers behind it (Python, slower to
      // start): until each listens, the S3 API answers 503 "Please reduce your request rate".
      const healthy = await fetch(`${swift.endpoint}/healthcheck`).then((r) => r.ok, () => false);
      if (healthy && (await Promise.all([account, container, object].map(listening))).every(Boolean)) break;
      if (Date.now() > deadline || children.some((c) => c.exitCode !== null)) {
        await swift.stop();
        throw new Error(`Swift did not start:\n${swift.#output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return swift;
  }

  /** Creates a bucket through the S3 API. */
  async createBucket(bucket: string): Promise<void> {
    const { S3Client, CreateBucketCommand } = await import('@aws-sdk/client-s3');
    const client = new S3Client({
      endpoint: this.endpoint, region: 'us-east-1', forcePathStyle: true,
      credentials: { accessKeyId: this.accessKeyId, secretAccessKey: this.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
    });
    try {
      // The account is created on first use: retry while the rings settle.
      for (let attempt = 0; ; attempt++) {
        try {
          await client.send(new CreateBucketCommand({ Bucket: bucket }));
          return;
        } catch (error) {
          if (attempt >= 20) throw error;
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
    } finally {
      client.destroy();
    }
  }

  /** An outage of the S3 endpoint: the proxy is killed (connections refused); the data stays. */
  async stopProxy(): Promise<void> {
    const proxy = this.#proxy!;
    if (proxy.child.exitCode !== null || proxy.child.signalCode !== null) return;
    const exited = new Promise((resolve) => proxy.child.once('exit', resolve));
    killGroup(proxy.child);
    await exited;
  }

  /** The endpoint back after stopProxy(); resolves once it answers. */
  async startProxy(): Promise<void> {
    const proxy = this.#proxy!;
    proxy.child = proxy.start();
    const deadline = Date.now() + 30_000;
    while (!(await fetch(`${this.endpoint}/healthcheck`).then((r) => r.ok, () => false))) {
      if (Date.now() > deadline) throw new Error(`the Swift proxy did not come back:\n${this.#output}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** Stops every server and removes the data. */
  async stop(): Promise<void> {
    const running = this.#children.filter((child) => child.exitCode === null && child.signalCode === null);
    const exited = running.map((child) => new Promise((resolve) => child.once('exit', resolve)));
    for (const child of running) killGroup(child);
    await Promise.all(exited);
    await rm(this.#root, { recursive: true, force: true });
  }
}

/** SIGKILL to the child's whole process group (it and the workers it forked). */
function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    child.kill('SIGKILL'); // already gone, or no group of its own
  }
}

/** Whether something accepts TCP connections on the loopback port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
