/**
 * The server's logger: JSON lines for machines (log shippers, `GROVE_LOG_FORMAT=json`), one
 * plain-text line per event for a person at a terminal (pino-pretty, loaded only then).
 */
import pino, { type Logger } from 'pino';
import type { GroveConfig } from './config.ts';
import { LogOutput } from './log-output.ts';

/** Which format `auto` means for an output: pretty on a terminal, JSON otherwise. Pure. */
export function resolveLogFormat(format: GroveConfig['logFormat'], isTerminal: boolean): 'json' | 'pretty' {
  if (format !== 'auto') return format;
  return isTerminal ? 'pretty' : 'json';
}

export async function createLogger(config: Pick<GroveConfig, 'logLevel' | 'logFormat'>, output: NodeJS.WriteStream & { readonly fd: number } = process.stdout): Promise<Logger> {
  if (resolveLogFormat(config.logFormat, output.isTTY === true) === 'json') return pino({ level: config.logLevel }, new LogOutput(output.fd));
  const { default: pretty } = await import('pino-pretty');
  // Synchronous, in-process: no worker thread, and nothing is lost when the process exits.
  const stream = pretty({
    destination: output,
    sync: true,
    singleLine: true,
    colorize: output.isTTY === true && output.hasColors?.() === true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname',
  });
  return pino({ level: config.logLevel }, stream);
}
