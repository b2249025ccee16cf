/**
 * Protocol v2 `ls-refs` (gitprotocol-v2, "ls-refs"), answered from Grove's ref view:
 *
 *   args:   symrefs | peel | unborn | ref-prefix <prefix>
 *   output: (<oid> | "unborn") SP <name> [SP "symref-target:" <target>] [SP "peeled:" <oid>] LF
 *           ... flush-pkt
 *
 * HEAD comes first (if it resolves, or is unborn and `unborn` and `symrefs` were asked for), then
 * the refs in byte order. Prefixes only reduce output; git ignores them all past
 * 65,536, and so does Grove.
 */
import { pktLines } from './pkt-line.ts';
import { V2RequestError } from './v2-request.ts';
import type { RefSnapshot } from '../repo/ref-snapshot.ts';

export interface LsRefsArgs {
  readonly symrefs: boolean;
  readonly peel: boolean;
  readonly unborn: boolean;
  readonly prefixes: readonly string[];
}

const MAX_PREFIXES = 65536;

export function parseLsRefsArgs(args: readonly string[]): LsRefsArgs {
  let symrefs = false;
  let peel = false;
  let unborn = false;
  const prefixes: string[] = [];
  for (const arg of args) {
    if (arg === 'symrefs') symrefs = true;
    else if (arg === 'peel') peel = true;
    else if (arg === 'unborn') unborn = true;
    else if (arg.startsWith('ref-prefix ')) prefixes.push(arg.slice('ref-prefix '.length));
    else throw new V2RequestError(`unexpected line: '${arg.slice(0, 100)}'`);
  }
  return { symrefs, peel, unborn, prefixes: prefixes.length >= MAX_PREFIXES ? [] : prefixes };
}

/**
 * Answers per snapshot, by arguments. A snapshot is immutable and replaced whenever a ref
 * moves, so an answer built once serves every identical ls-refs until then (a clone swarm
 * sends the same request hundreds of times).
 */
const answered = new WeakMap<RefSnapshot, Map<string, Buffer>>();
const MAX_ANSWERS_PER_SNAPSHOT = 64;

export function lsRefsResponse(snapshot: RefSnapshot, args: LsRefsArgs): Buffer {
  const key = `${+args.symrefs}${+args.peel}${+args.unborn}\0${args.prefixes.join('\0')}`;
  let answers = answered.get(snapshot);
  const known = answers?.get(key);
  if (known !== undefined) return known;
  const answer = buildLsRefsResponse(snapshot, args);
  if (answers === undefined) answered.set(snapshot, (answers = new Map()));
  if (answers.size < MAX_ANSWERS_PER_SNAPSHOT) answers.set(key, answer);
  return answer;
}

function buildLsRefsResponse(snapshot: RefSnapshot, args: LsRefsArgs): Buffer {
  const matches = (name: string) => args.prefixes.length === 0 || args.prefixes.some((p) => name.startsWith(p));
  const lines: string[] = [];
  const head = snapshot.head;
  if (head !== null && matches('HEAD')) {
    const target = args.symrefs ? ` symref-target:${head.target}` : '';
    const oid = snapshot.refs.find((ref) => ref.name === head.target)?.oid;
    if (oid !== undefined) lines.push(`${oid} HEAD${target}\n`);
    else if (args.unborn && args.symrefs) lines.push(`unborn HEAD${target}\n`); // as git: unborn needs symrefs
  }
  for (const ref of snapshot.refs) {
    if (!matches(ref.name)) continue;
    const peeled = args.peel && ref.peeled !== null ? ` peeled:${ref.peeled}` : '';
    lines.push(`${ref.oid} ${ref.name}${peeled}\n`);
  }
  return pktLines(lines);
}
