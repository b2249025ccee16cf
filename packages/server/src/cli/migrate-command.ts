/** `grove admin migrate-to-cluster`: an embedded installation into PostgreSQL and an object store (docs/scale-out.md). */
import type { Command } from 'commander';
import path from 'node:path';
import { migrateToCluster } from '../cluster/migrate-to-cluster.ts';
import { ConfigError, loadConfig } from '../config.ts';

export function registerMigrateCommand(admin: Command): void {
  admin.command('migrate-to-cluster')
    .description('copy a stopped embedded installation (--data) into GROVE_DATABASE_URL and GROVE_OBJECT_STORE (an empty database)')
    .option('--data <dir>', 'the embedded data directory (default ./grove-data)')
    .action(async (options: { data?: string }) => {
      const config = loadConfig({ ...(options.data !== undefined ? { data: options.data } : {}) });
      if (config.databaseUrl === null || config.objectStore === null) {
        throw new ConfigError('migrate-to-cluster needs GROVE_DATABASE_URL and GROVE_OBJECT_STORE (with GROVE_S3_* for s3://) naming the cluster\'s storage');
      }
      const report = await migrateToCluster({ dataDir: config.dataDir, databaseUrl: config.databaseUrl, objectStore: config.objectStore }, (line) => process.stderr.write(`${line}\n`));
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      const keyNote = process.env.GROVE_SECRET_KEY
        ? 'every node needs the same GROVE_SECRET_KEY as this installation'
        : `set GROVE_SECRET_KEY on every node to the key in ${path.join(config.dataDir, 'secret.key')} (stored secrets are sealed with it)`;
      process.stderr.write(`migrated. Before starting cluster nodes (each on a new data directory): ${keyNote}, and GROVE_ADMIN_TOKEN to this installation's root token (${path.join(config.dataDir, 'admin-token')} unless it was set).\n`);
    });
}
