/**
 * Protocol v2 requests (gitprotocol-v2, "Command Request"): one command per POST.
 *
 *   PKT("command=<name>")
 *   *PKT("<capability>[=<value>]")      agent, object-format, server-option
 *   delim-pkt
 *   *PKT("<argument>")
 *   flush-pkt
 *
 * A body that is only a flush carries no command. git's serve.c refuses any
 * capability it did not advertise, so this parser does the same before anything is
 * forwarded to a git child.
 */
import { DELIM_PKT, FLUSH_PKT, PktLineError, packetText, parsePackets, pktLine } from './pkt-line.ts';

export const V2_COMMANDS = ['ls-refs', 'fetch', 'object-info'] as const;
export type V2Command = (typeof V2_COMMANDS)[number];

export interface V2Request {
  readonly command: V2Command;
  readonly agent: string | null;
  readonly serverOptions: readonly string[];
  readonly args: readonly string[];
}

/** A request Grove refuses; the message goes to the client in an ERR packet. */
export class V2RequestError extends Error {
  override name = 'V2RequestError';
}

/** Parses a whole (decoded) request body; null for a flush-only body. */
export function parseV2Request(body: Buffer): V2Request | null {
  let packets;
  try {
    packets = parsePackets(body);
  } catch (error) {
    if (error instanceof PktLineError) throw new V2RequestError(error.message);
    throw error;
  }
  if (packets.length === 0 || (packets.length === 1 && packets[0]!.kind === 'flush')) return null;
  let index = 0;
  let command: V2Command | null = null;
  let agent: string | null = null;
  const serverOptions: string[] = [];
  for (; index < packets.length; index++) {
    const packet = packets[index]!;
    if (packet.kind !== 'data') break;
    const line = packetText(packet.payload);
    if (line.startsWith('command=')) {
      if (command !== null) throw new V2RequestError('protocol error: more than one command');
      const name = line.slice('command='.length);
      if (!(V2_COMMANDS as readonly string[]).includes(name)) throw new V2RequestError(`invalid command '${name}'`);
      command = name as V2Command;
    } else if (line.startsWith('agent=')) {
      agent = line.slice('agent='.length);
    } else if (line.startsWith('object-format=')) {
      if (line !== 'object-format=sha1') throw new V2RequestError('mismatched object format');
    } else if (line.startsWith('server-option=')) {
      serverOptions.push(line.slice('server-option='.length));
    } else {
      throw new V2RequestError(`unknown capability '${line.slice(0, 100)}'`);
    }
  }
  if (command === null) throw new V2RequestError('no command requested');
  const args: string[] = [];
  const separator = packets[index];
  if (separator?.kind === 'delim') {
    for (index++; index < packets.length; index++) {
      const packet = packets[index]!;
      if (packet.kind !== 'data') break;
      args.push(packetText(packet.payload));
    }
  }
  const end = packets[index];
  if (end?.kind !== 'flush') throw new V2RequestError('protocol error: expected flush at the end of the request');
  if (index !== packets.length - 1) throw new V2RequestError('protocol error: data after the end of the request');
  return { command, agent, serverOptions, args };
}

/** The request as bytes again (after Grove changed its arguments): what upload-pack is given. */
export function encodeV2Request(request: V2Request): Buffer {
  const capabilities = [`command=${request.command}`, ...(request.agent !== null ? [`agent=${request.agent}`] : []), 'object-format=sha1', ...request.serverOptions.map((o) => `server-option=${o}`)];
  return Buffer.concat([...capabilities.map((line) => pktLine(`${line}\n`)), ...(request.args.length > 0 ? [DELIM_PKT, ...request.args.map((arg) => pktLine(`${arg}\n`))] : []), FLUSH_PKT]);
}
