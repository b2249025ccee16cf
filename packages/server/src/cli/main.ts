/** The `grove` command line: `serve` runs the daemon; the rest are API clients. */
import { Command } from 'commander';
import { ConfigError } from '../config.ts';
import { VERSION } from '../main.ts';
import { registerAccessCommands } from './access-commands.ts';
import { registerAgentCommands, registerForkCommand } from './agent-commands.ts';
import { registerEventCommands } from './event-commands.ts';
import { describeCliError, registerClientCommands } from './client-commands.ts';
import { registerContentCommands } from './content-commands.ts';
import { registerMigrateCommand } from './migrate-command.ts';
import { serve } from './serve.ts';
import { registerSyncCommands } from './sync-commands.ts';
import { registerImportCommand } from './import-command.ts';

export async function runCli(argv: readonly string[]): Promise<void> {
  const program = new Command('grove')
    .description('Grove: a self-hosted, headless Git server for fleets of AI agents')
    .version(VERSION)
    .showHelpAfterError();

  program
    .command('serve')
    .description('run the server (env GROVE_DATA, GROVE_LISTEN, GROVE_ADMIN_TOKEN, GROVE_PUBLIC_URL)')
    .option('--data <dir>', 'data directory (default ./grove-data)')
    .option('--listen <host:port>', 'address to listen on (default 127.0.0.1:8080)')
    .action(async (options: { data?: string; listen?: string }) => serve(options));

  registerClientCommands(program);
  registerAccessCommands(program);
  registerContentCommands(program);
  registerAgentCommands(program);
  registerEventCommands(program);
  registerSyncCommands(program);
  registerImportCommand(program);
  const repoCommand = program.commands.find((command) => command.name() === 'repo');
  if (repoCommand) registerForkCommand(repoCommand);
  const adminCommand = program.commands.find((command) => command.name() === 'admin');
  if (adminCommand) registerMigrateCommand(adminCommand);

  try {
    await program.parseAsync([...argv]);
  } catch (error) {
    process.stderr.write(`${error instanceof ConfigError ? `grove: ${error.message}` : describeCliError(error)}\n`);
    process.exitCode = 1;
  }
}
