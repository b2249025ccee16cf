/**
 * `grove import URL ORG/REPO [--credential ID] [--mirror] [--wait]`: the one-call import
 * (docs/remote-sync.md, "Import"). Prints the import as JSON; with `--wait`, a progress bar on
 * stderr (when it is a terminal; one line per 10 % otherwise) until it ends, then the final
 * state, exiting 1 if it failed.
 */
import type { Command } from 'commander';
import type { RepoImport } from '@grove/sdk';
import { clientFromEnv, splitRepo } from './client-commands.ts';

const BAR_WIDTH = 30;

/** One progress line: `[#########.....]  42% importing https://…`. Pure. */
export function progressLine(state: Pick<RepoImport, 'progress' | 'status' | 'url'>): string {
  const filled = Math.round((state.progress / 100) * BAR_WIDTH);
  return `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${String(state.progress).padStart(3)}% ${state.status} ${state.url}`;
}

export function registerImportCommand(program: Command): void {
  program
    .command('import <url> <org/repo>')
    .description('import a remote repository with its whole history (every branch and tag); --mirror keeps following it read-only')
    .option('--credential <id>', 'org credential for a private remote (grove credential add)')
    .option('--mirror', 'keep following the remote as a read-only mirror (upstream origin)')
    .option('--wait', 'show progress and wait until the import ends (exit 1 if it failed)')
    .action(async (url: string, target: string, options: { credential?: string; mirror?: boolean; wait?: boolean }) => {
      const { org, repo } = splitRepo(target);
      const grove = clientFromEnv();
      const started = await grove.repos.import(org, { name: repo, url, ...(options.credential !== undefined ? { credentialId: options.credential } : {}), ...(options.mirror ? { mirror: true } : {}) });
      if (!options.wait) {
        process.stdout.write(`${JSON.stringify(started, null, 2)}\n`);
        return;
      }
      const tty = process.stderr.isTTY === true;
      let lastDecile = -1;
      const final = await grove.repos.waitForImport(org, started.import.id, {
        intervalMs: 250,
        onProgress: (state) => {
          if (tty) process.stderr.write(`\r${progressLine(state)}`);
          else if (Math.floor(state.progress / 10) !== lastDecile || state.status !== 'importing') {
            lastDecile = Math.floor(state.progress / 10);
            process.stderr.write(`${progressLine(state)}\n`);
          }
        },
      });
      if (tty) process.stderr.write('\n');
      process.stdout.write(`${JSON.stringify({ ...final, ...(started.import.webhook ? { webhook: started.import.webhook } : {}) }, null, 2)}\n`);
      if (final.status === 'failed') {
        process.stderr.write(`grove: the import failed: ${final.error?.code ?? 'error'}: ${final.error?.message ?? ''}\n`);
        process.exitCode = 1;
      }
    });
}
