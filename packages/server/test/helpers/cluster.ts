/**
 * A Grove cluster for tests: a private PostgreSQL cluster, an object store (a directory,
 * `file://`, unless a test gives an S3 one) and any number of Grove nodes on random ports,
 * each with its own data directory (its cache). Nodes run in this process (startTestServer)
 * and can be stopped, started fresh (empty cache) or restarted on their old cache.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { openObjectStore, parseObjectStore } from '../../src/storage/open-object-store.ts';
import type { ObjectStore } from '../../src/storage/object-store.ts';
import { PostgresCluster } from './postgres-cluster.ts';
import { startTestServer, type TestServer } from './server.ts';

export interface ClusterNode {
  readonly name: string;
  readonly dataDir: string;
  server: TestServer;
}

export class TestCluster {
  readonly postgres: PostgresCluster;
  readonly databaseUrl: string;
  readonly objectStore: string;
  readonly nodes: ClusterNode[] = [];
  readonly #root: string;
  readonly #env: Record<string, string>;
  #started = 0;

  private constructor(postgres: PostgresCluster, databaseUrl: string, objectStore: string, root: string, env: Record<string, string>) {
    this.postgres = postgres;
    this.databaseUrl = databaseUrl;
    this.objectStore = objectStore;
    this.#root = root;
    this.#env = env;
  }

  /** Starts PostgreSQL, the object store and `nodes` Grove nodes. */
  /** `env` is given to every node (an S3 object store's GROVE_OBJECT_STORE and credentials). */
  static async start(nodes: number, options: { env?: Record<string, string> } = {}): Promise<TestCluster> {
    const root = await mkdtemp(path.join(os.tmpdir(), 'grove-cluster-'));
    const postgres = await PostgresCluster.start({ maxConnections: 200 });
    const client = new pg.Client({ connectionString: postgres.url });
    await client.connect();
    await client.query('create database grove');
    await client.end();
    const objectStore = options.env?.GROVE_OBJECT_STORE ?? `file://${path.join(root, 'objects')}`;
    const cluster = new TestCluster(postgres, postgres.url.replace(/\/postgres$/, '/grove'), objectStore, root, options.env ?? {});
    for (let i = 0; i < nodes; i++) await cluster.addNode();
    return cluster;
  }

  /** Starts one more node with an empty cache (`env`: settings of its own). */
  async addNode(env: Record<string, string> = {}): Promise<ClusterNode> {
    const name = `node-${++this.#started}`;
    const dataDir = path.join(this.#root, name);
    const node: ClusterNode = { name, dataDir, server: await this.#serve(name, dataDir, env) };
    this.nodes.push(node);
    return node;
  }

  /** Stops a node and starts it again on the same cache. */
  async restart(node: ClusterNode): Promise<void> {
    await node.server.close();
    node.server = await this.#serve(node.name, node.dataDir);
  }

  #serve(name: string, dataDir: string, env: Record<string, string> = {}): Promise<TestServer> {
    return startTestServer({ ...this.#env, ...env, GROVE_DATABASE_URL: this.databaseUrl, GROVE_OBJECT_STORE: this.objectStore, GROVE_NODE_ID: name }, dataDir);
  }

  /** The node at `i`, wrapping around: tests route by index. */
  node(i: number): TestServer {
    return this.nodes[i % this.nodes.length]!.server;
  }

  /** A clone URL of `org/repo` on node `i`. */
  url(i: number, org: string, repo: string): string {
    return `${this.node(i).url}/${org}/${repo}.git`;
  }

  /** Runs a query on the cluster's database. */
  async query<T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> {
    const client = new pg.Client({ connectionString: this.databaseUrl });
    await client.connect();
    try {
      return (await client.query<T>(text, values)).rows;
    } finally {
      await client.end();
    }
  }

  /** A count(*) query's answer. */
  async count(text: string, values: unknown[] = []): Promise<number> {
    const [row] = await this.query<{ count: string }>(text, values);
    return Number(row?.count ?? 0);
  }

  /** Every key the object store holds under `prefix` (repos/: packs; bigstore/: chunk store segments). */
  async storedKeys(prefix = 'repos/'): Promise<string[]> {
    return this.withStore(async (store) => {
      const keys: string[] = [];
      for await (const item of store.list(prefix)) keys.push(item.key);
      return keys;
    });
  }

  /** Runs `work` with a client of the cluster's object store. */
  async withStore<T>(work: (store: ObjectStore) => Promise<T>): Promise<T> {
    const config = parseObjectStore(this.objectStore, this.#env);
    if (typeof config === 'string') throw new Error(config);
    const store = await openObjectStore(config);
    try {
      return await work(store);
    } finally {
      await store.close();
    }
  }

  async stop(): Promise<void> {
    for (const node of this.nodes) await node.server.close().catch(() => undefined);
    await this.postgres.stop();
    await rm(this.#root, { recursive: true, force: true });
  }
}
