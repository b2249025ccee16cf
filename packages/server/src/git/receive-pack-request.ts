/**
 * The head of a receive-pack request (gitprotocol-pack, "Reference Update Request
 * and Packfile Transfer"):
 *
 *   *PKT("shallow <oid>")                    only from shallow clients
 *   PKT("<old> <new> <ref>\0<caps>")         first command; caps after the NUL
 *   *PKT("<old> <new> <ref>")
 *   flush-pkt
 *   [*PKT("<push-option>") flush-pkt]        only with the push-options capability
 *   [PACK…]                                  raw pack bytes until the end of the body
 *
 * A body that is only a flush (the client's auth probe, or zero commands) has no
 * commands and no pack. `push-cert` blocks are refused: Grove does not advertise it.
 */
import { PktLineError, PktLineReader, packetText } from './pkt-line.ts';
import { isOid, isZeroOid } from './oid.ts';

export const RECEIVE_PACK_CAPABILITIES = [
  'report-status',
  'report-status-v2',
  'side-band-64k',
  'ofs-delta',
  'delete-refs',
  'atomic',
  'push-options',
  'quiet',
  'object-format=sha1',
] as const;

export type RefCommandKind = 'create' | 'update' | 'delete';

export interface RefCommand {
  readonly oldOid: string;
  readonly newOid: string;
  readonly ref: string;
  readonly kind: RefCommandKind;
}

export interface ReceivePackRequest {
  readonly shallow: readonly string[];
  readonly commands: readonly RefCommand[];
  readonly capabilities: ReadonlySet<string>;
  readonly agent: string | null;
  readonly pushOptions: readonly string[];
}

export interface ReceivePackLimits {
  readonly maxCommands: number;
  readonly maxPushOptions: number;
}

/** Longest command or push-option line accepted: two ids, a 1 KiB ref name and the capabilities fit well within it. */
export const MAX_COMMAND_LINE_BYTES = 8192;

export const DEFAULT_RECEIVE_PACK_LIMITS: ReceivePackLimits = { maxCommands: 10_000, maxPushOptions: 100 };

/** A receive-pack request the server cannot accept; the message is shown to the client. */
export class ReceivePackRequestError extends Error {
  override name = 'ReceivePackRequestError';
}

export function commandKind(oldOid: string, newOid: string): RefCommandKind {
  if (isZeroOid(newOid)) return 'delete';
  if (isZeroOid(oldOid)) return 'create';
  return 'update';
}

/** Parses one command line (without the capability part). */
export function parseCommandLine(line: string): RefCommand {
  const match = /^([0-9a-f]{40}) ([0-9a-f]{40}) (.+)$/.exec(line);
  if (!match) throw new ReceivePackRequestError(`protocol error: expected '<old> <new> <ref>', got ${JSON.stringify(line.slice(0, 120))}`);
  const [, oldOid, newOid, ref] = match as unknown as [string, string, string, string];
  return { oldOid, newOid, ref, kind: commandKind(oldOid, newOid) };
}

/** Splits the capability list of the first command and checks it against what Grove advertises. */
export function parseCapabilities(text: string): { capabilities: Set<string>; agent: string | null } {
  const capabilities = new Set<string>();
  let agent: string | null = null;
  const known = new Set<string>(RECEIVE_PACK_CAPABILITIES);
  for (const word of text.split(' ')) {
    if (word === '') continue;
    if (word.startsWith('agent=')) {
      agent = word.slice('agent='.length);
      continue;
    }
    if (word.startsWith('session-id=')) continue; // logging only; harmless
    if (word.startsWith('object-format=') && word !== 'object-format=sha1') {
      throw new ReceivePackRequestError(`unsupported object format ${JSON.stringify(word.slice(14))}: Grove repositories use sha1`);
    }
    if (word === 'side-band' || known.has(word)) {
      capabilities.add(word);
      continue;
    }
    throw new ReceivePackRequestError(`protocol error: unknown capability ${JSON.stringify(word)}`);
  }
  return { capabilities, agent };
}

/**
 * Reads the command list and push options; the reader is then positioned at the
 * pack (if any).
 */
export async function readReceivePackRequest(
  reader: PktLineReader,
  limits: ReceivePackLimits = DEFAULT_RECEIVE_PACK_LIMITS,
): Promise<ReceivePackRequest> {
  const shallow: string[] = [];
  const commands: RefCommand[] = [];
  let capabilities = new Set<string>();
  let agent: string | null = null;
  for (;;) {
    const packet = await reader.read();
    if (packet === null) {
      if (commands.length === 0 && shallow.length === 0) break; // an empty body: nothing to do
      throw new ReceivePackRequestError('protocol error: request ended before the flush after the command list');
    }
    if (packet.kind === 'flush') break;
    if (packet.kind !== 'data') throw new ReceivePackRequestError('protocol error: unexpected special packet in the command list');
    if (packet.payload.length > MAX_COMMAND_LINE_BYTES) throw new ReceivePackRequestError(`protocol error: command line longer than ${MAX_COMMAND_LINE_BYTES} bytes`);
    const nul = packet.payload.indexOf(0);
    const line = packetText(nul === -1 ? packet.payload : packet.payload.subarray(0, nul));
    if (commands.length === 0 && line.startsWith('shallow ')) {
      const oid = line.slice('shallow '.length);
      if (!isOid(oid)) throw new ReceivePackRequestError(`protocol error: bad shallow line ${JSON.stringify(line.slice(0, 80))}`);
      shallow.push(oid);
      continue;
    }
    if (line.startsWith('push-cert')) throw new ReceivePackRequestError('signed pushes (push-cert) are not supported');
    if (commands.length === 0) {
      if (nul !== -1) ({ capabilities, agent } = parseCapabilities(packetText(packet.payload.subarray(nul + 1))));
    } else if (nul !== -1) {
      throw new ReceivePackRequestError('protocol error: capabilities after the first command');
    }
    if (commands.length >= limits.maxCommands) {
      throw new ReceivePackRequestError(`too many ref updates in one push (limit ${limits.maxCommands})`);
    }
    commands.push(parseCommandLine(line));
  }
  if (capabilities.has('side-band') && capabilities.has('side-band-64k')) {
    throw new ReceivePackRequestError('protocol error: side-band and side-band-64k both requested');
  }
  const pushOptions: string[] = [];
  if (commands.length > 0 && capabilities.has('push-options')) {
    for (;;) {
      const packet = await reader.read();
      if (packet === null) throw new ReceivePackRequestError('protocol error: request ended inside the push options');
      if (packet.kind === 'flush') break;
      if (packet.kind !== 'data') throw new ReceivePackRequestError('protocol error: unexpected special packet in the push options');
      if (packet.payload.length > MAX_COMMAND_LINE_BYTES) throw new ReceivePackRequestError(`push option longer than ${MAX_COMMAND_LINE_BYTES} bytes`);
      if (pushOptions.length >= limits.maxPushOptions) throw new ReceivePackRequestError(`too many push options (limit ${limits.maxPushOptions})`);
      pushOptions.push(packetText(packet.payload));
    }
  }
  return { shallow, commands, capabilities, agent, pushOptions };
}

export { PktLineError };
