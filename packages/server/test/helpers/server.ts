/** Starts a real Grove server on a random loopback port with its own data directory. */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Grove } from '@grove/sdk';
import { loadConfig } from '../../src/config.ts';
import { startServer, type RunningServer } from '../../src/main.ts';
import { databaseEnv } from './database.ts';

export const TEST_ADMIN_TOKEN = 'grove_test_admin_token_0123456789';

export interface TestServer {
  readonly url: string;
  readonly token: string;
  readonly dataDir: string;
  readonly server: RunningServer;
  readonly sdk: Grove;
  /** Creates org (if needed) and repo; returns the clone URL. */
  createRepo(org: string, repo: string, defaultBranch?: string): Promise<string>;
  close(): Promise<void>;
}

export async function startTestServer(env: Record<string, string> = {}, dataDir?: string): Promise<TestServer> {
  const dir = dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'grove-test-')));
  const config = loadConfig({ data: dir, listen: '127.0.0.1:0' }, { GROVE_ADMIN_TOKEN: TEST_ADMIN_TOKEN, GROVE_LOG_LEVEL: 'silent', ...(await databaseEnv(dir)), ...env });
  const server = await startServer(config, pino({ level: process.env.GROVE_TEST_LOG ?? 'silent' }));
  const sdk = new Grove({ baseUrl: server.url, token: TEST_ADMIN_TOKEN });
  const orgs = new Set<string>();
  return {
    url: server.url,
    token: TEST_ADMIN_TOKEN,
    dataDir: dir,
    server,
    sdk,
    async createRepo(org, repo, defaultBranch) {
      if (!orgs.has(org)) {
        await sdk.orgs.create({ name: org }).catch((error: { code?: string }) => {
          if (error.code !== 'already_exists') throw error;
        });
        orgs.add(org);
      }
      const created = await sdk.repos.create(org, { name: repo, ...(defaultBranch ? { defaultBranch } : {}) });
      return created.cloneUrl;
    },
    async close() {
      await server.close();
      if (dataDir === undefined) await rm(dir, { recursive: true, force: true });
    },
  };
}
