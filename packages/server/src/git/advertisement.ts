/**
 * What info/refs answers (gitprotocol-http, "Smart Clients"; gitprotocol-v2,
 * "Capability Advertisement"):
 *
 *   PKT("# service=git-<svc>\n") flush-pkt        always (the GitHub shape; every client accepts it)
 *   v2:  PKT("version 2\n") *PKT("<capability>\n") flush-pkt
 *   receive-pack: PKT("<oid> <ref>\0<caps>\n") *PKT("<oid> <ref>\n") flush-pkt
 *                 or, with no refs, PKT("<zero-oid> capabilities^{}\0<caps>\n") flush-pkt
 *
 * The v2 list names only what the spawned `git upload-pack` accepts with the config
 * Grove passes it (uploadpack.allowFilter=true): a capability git does not know would
 * make it die on the client's request.
 */
import { FLUSH_PKT, pktLine, pktLines } from './pkt-line.ts';
import { ZERO_OID } from './oid.ts';
import { RECEIVE_PACK_CAPABILITIES } from './receive-pack-request.ts';
import type { RefSnapshot } from '../repo/ref-snapshot.ts';

export type GitService = 'git-upload-pack' | 'git-receive-pack';

export function serviceHeader(service: GitService): Buffer {
  return Buffer.concat([pktLine(`# service=${service}\n`), FLUSH_PKT]);
}

export function v2Capabilities(agent: string): Buffer {
  const lines = [
    'version 2',
    `agent=${agent}`,
    'ls-refs=unborn',
    'fetch=shallow wait-for-done filter',
    'server-option',
    'object-format=sha1',
    'object-info',
  ];
  return Buffer.concat([...lines.map((line) => pktLine(`${line}\n`)), FLUSH_PKT]);
}

/** Built advertisements by snapshot (a snapshot is immutable: a ref change makes a new one). */
const advertised = new WeakMap<RefSnapshot, Buffer[]>();

export function receivePackAdvertisement(snapshot: RefSnapshot, agent: string, versionOne: boolean): Buffer {
  let built = advertised.get(snapshot);
  const known = built?.[versionOne ? 1 : 0];
  if (known !== undefined) return known;
  const answer = buildReceivePackAdvertisement(snapshot, agent, versionOne);
  if (built === undefined) advertised.set(snapshot, (built = []));
  built[versionOne ? 1 : 0] = answer;
  return answer;
}

function buildReceivePackAdvertisement(snapshot: RefSnapshot, agent: string, versionOne: boolean): Buffer {
  const caps = [...RECEIVE_PACK_CAPABILITIES, `agent=${agent}`].join(' ');
  const lines: string[] = [];
  if (versionOne) lines.push('version 1\n');
  if (snapshot.refs.length === 0) {
    lines.push(`${ZERO_OID} capabilities^{}\0${caps}\n`);
  } else {
    snapshot.refs.forEach((ref, index) => {
      lines.push(index === 0 ? `${ref.oid} ${ref.name}\0${caps}\n` : `${ref.oid} ${ref.name}\n`);
    });
  }
  return pktLines(lines);
}
