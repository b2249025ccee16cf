/** `grove serve`: runs the server until SIGTERM/SIGINT, then drains and exits 0. */
import { loadConfig, type ConfigInput } from '../config.ts';
import { createLogger } from '../logger.ts';
import { startServer } from '../main.ts';

export async function serve(options: ConfigInput): Promise<void> {
  const config = loadConfig(options);
  // A reader that went away (`grove serve | head`) must not crash or hold up the server.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
  const logger = await createLogger(config);
  const server = await startServer(config, logger, { onFatal: () => process.exit(1) });
  if (server.generatedAdminToken !== null) {
    process.stdout.write(
      `\nGrove generated the root admin token (shown only this once; also saved in ${config.dataDir}/admin-token, mode 0600):\n\n  ${server.generatedAdminToken}\n\n`,
    );
  }
  logger.info({ url: server.url, data: config.dataDir }, 'grove is listening');
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: no new connections, finishing in-flight work');
    server.close().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  // Repeated signals during the drain are ignored (the grace period bounds it).
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
