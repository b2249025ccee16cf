/**
 * Workload generation with `git fast-import`: a deterministic history of a few thousand
 * commits (text files edited a few lines at a time, feature branches merged back with
 * real merge commits, release branches, annotated and lightweight tags, binary files
 * replaced now and then), written as one fast-import stream from Node. Seconds, not the
 * minutes thousands of `git commit` calls would take.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { gitOk } from './util.ts';

/** mulberry32: small, fast, deterministic. */
class Rng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i += 4) {
      const v = (this.next() * 4294967296) >>> 0;
      out[i] = v & 0xff;
      if (i + 1 < n) out[i + 1] = (v >>> 8) & 0xff;
      if (i + 2 < n) out[i + 2] = (v >>> 16) & 0xff;
      if (i + 3 < n) out[i + 3] = (v >>> 24) & 0xff;
    }
    return out;
  }
}

const WORDS = (
  'agent branch commit merge fetch clone push ref tag tree blob pack delta index object graph ' +
  'bitmap cache queue worker fleet sandbox server client request response stream socket buffer ' +
  'config token scope policy repo org key sign verify hash digest offset window depth shallow ' +
  'filter partial negotiate have want done ready flush delim band progress error retry backoff ' +
  'timeout deadline latency throughput memory disk fsync rename lock quarantine migrate atomic ' +
  'function return const let async await promise export import interface type class extends'
).split(' ');

function textLine(rng: Rng): string {
  const n = 4 + rng.int(8);
  const words: string[] = [];
  for (let i = 0; i < n; i++) words.push(WORDS[rng.int(WORDS.length)]!);
  return words.join(' ');
}

export interface WorkloadSpec {
  /** Total commits to generate (main, feature branches and merges together). */
  readonly commits: number;
  readonly seed?: number;
}

export interface GeneratedRepo {
  /** A bare repository holding the history. */
  readonly dir: string;
  readonly mainTip: string;
  readonly commits: number;
  readonly merges: number;
  readonly branches: number;
  readonly annotatedTags: number;
  readonly lightweightTags: number;
  readonly textFiles: number;
  readonly binaryFiles: number;
  readonly binaryBlobs: number;
  readonly streamBytes: number;
  readonly packBytes: number;
}

const TEXT_DIRS = 20;
const FILES_PER_DIR = 10;
const BINARY_SIZES = [32, 48, 64, 96, 128, 160].map((k) => k * 1024);
const FEATURE_EVERY = 25;
const FEATURE_COMMITS = 3;
const MERGE_AFTER = 12;
const TAG_EVERY = 20;
const RELEASE_EVERY = 100;
const BINARY_REPLACE_EVERY = 150;

/** Builds the fast-import stream; returns it as chunks plus what it contains. */
export function buildStream(spec: WorkloadSpec): { chunks: Buffer[]; stats: Omit<GeneratedRepo, 'dir' | 'mainTip' | 'packBytes' | 'streamBytes'> } {
  const rng = new Rng(spec.seed ?? 20240501);
  const chunks: Buffer[] = [];
  const emit = (text: string): void => {
    chunks.push(Buffer.from(text, 'utf8'));
  };
  const emitData = (data: Buffer | string): void => {
    const buffer = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    emit(`data ${buffer.length}\n`);
    chunks.push(buffer);
    emit('\n');
  };
  let mark = 0;
  let time = 1_700_000_000;
  const who = (name: string, email: string): string => `${name} <${email}> ${time} +0000`;
  const commitHeader = (ref: string, message: string, author: number): number => {
    const m = ++mark;
    time += 300 + rng.int(3000);
    emit(`commit ${ref}\nmark :${m}\n`);
    emit(`author ${who(`Agent ${author}`, `agent${author}@bench.invalid`)}\n`);
    emit(`committer ${who('Bench Committer', 'committer@bench.invalid')}\n`);
    emitData(message);
    return m;
  };

  // The working state of main.
  const files = new Map<string, string[]>();
  for (let d = 0; d < TEXT_DIRS; d++) {
    for (let f = 0; f < FILES_PER_DIR; f++) {
      const lines: string[] = [];
      const n = 30 + rng.int(50);
      for (let i = 0; i < n; i++) lines.push(textLine(rng));
      files.set(`src/mod${d}/file${f}.txt`, lines);
    }
  }
  const textPaths = [...files.keys()];
  const binaryPaths = BINARY_SIZES.map((_, i) => `assets/image${i}.bin`);
  let binaryBlobs = 0;
  const binaryBlob = (size: number): number => {
    const m = ++mark;
    emit(`blob\nmark :${m}\n`);
    emitData(rng.bytes(size));
    binaryBlobs++;
    return m;
  };

  let commits = 0;
  let merges = 0;
  let annotated = 0;
  let lightweight = 0;
  let branches = 1;

  // Root commit: every text file and the binaries.
  const binMarks = BINARY_SIZES.map((size) => binaryBlob(size));
  let mainMark = commitHeader('refs/heads/main', 'Initial import\n', 0);
  commits++;
  emit('deleteall\n');
  for (const [p, lines] of files) {
    emit(`M 100644 inline ${p}\n`);
    emitData(lines.join('\n') + '\n');
  }
  binMarks.forEach((m, i) => emit(`M 100644 :${m} ${binaryPaths[i]}\n`));
  emit(`M 100644 inline README.md\n`);
  emitData('# bench\n\nA generated repository for the Grove benchmark.\n');
  emit('\n');

  interface Feature {
    readonly ref: string;
    readonly mergeAt: number;
    readonly tip: number;
    readonly files: Map<string, string>;
    readonly name: string;
  }
  const open: Feature[] = [];
  let step = 0;
  let featureNo = 0;
  let tagNo = 0;

  while (commits < spec.commits) {
    step++;
    // Start a feature branch off the current main tip.
    if (step % FEATURE_EVERY === 5) {
      featureNo++;
      const name = `feature/f${featureNo}`;
      const ref = `refs/heads/${name}`;
      const featureFiles = new Map<string, string>();
      let tip = mainMark;
      for (let c = 0; c < FEATURE_COMMITS; c++) {
        const m = commitHeader(ref, `${name}: step ${c + 1}\n\n${textLine(rng)}\n`, 1 + rng.int(50));
        emit(`from :${tip}\n`);
        const p = `features/f${featureNo}/${c === 0 ? 'notes' : `part${c}`}.txt`;
        let body = '';
        for (let i = 0; i < 20 + rng.int(20); i++) body += textLine(rng) + '\n';
        featureFiles.set(p, body);
        emit(`M 100644 inline ${p}\n`);
        emitData(body);
        emit('\n');
        tip = m;
        commits++;
      }
      branches++;
      open.push({ ref, mergeAt: step + MERGE_AFTER, tip, files: featureFiles, name });
    }

    const due = open.findIndex((f) => f.mergeAt <= step);
    if (due >= 0) {
      const feature = open.splice(due, 1)[0]!;
      const m = commitHeader('refs/heads/main', `Merge branch '${feature.name}'\n`, 0);
      emit(`from :${mainMark}\nmerge :${feature.tip}\n`);
      for (const [p, body] of feature.files) {
        emit(`M 100644 inline ${p}\n`);
        emitData(body);
      }
      emit('\n');
      mainMark = m;
      commits++;
      merges++;
    } else {
      // Blobs cannot be defined inside a commit: make the replacement binary first.
      let replaced: { blob: number; path: string } | null = null;
      if (step % BINARY_REPLACE_EVERY === 0) {
        const which = rng.int(binaryPaths.length);
        replaced = { blob: binaryBlob(BINARY_SIZES[which]!), path: binaryPaths[which]! };
      }
      const m = commitHeader('refs/heads/main', `Change ${step}: ${textLine(rng)}\n\n${textLine(rng)}\n`, 1 + rng.int(50));
      emit(`from :${mainMark}\n`);
      const touched = 1 + rng.int(3);
      for (let t = 0; t < touched; t++) {
        const p = textPaths[rng.int(textPaths.length)]!;
        const lines = files.get(p)!;
        const edits = 1 + rng.int(3);
        for (let e = 0; e < edits; e++) {
          const r = rng.next();
          if (r < 0.6 && lines.length > 0) lines[rng.int(lines.length)] = textLine(rng);
          else if (r < 0.9) lines.splice(rng.int(lines.length + 1), 0, textLine(rng));
          else if (lines.length > 10) lines.splice(rng.int(lines.length), 1);
        }
        emit(`M 100644 inline ${p}\n`);
        emitData(lines.join('\n') + '\n');
      }
      if (replaced) emit(`M 100644 :${replaced.blob} ${replaced.path}\n`);
      emit('\n');
      mainMark = m;
      commits++;
    }

    if (step % TAG_EVERY === 0) {
      tagNo++;
      if (tagNo % 2 === 1) {
        emit(`tag v0.${tagNo}\nfrom :${mainMark}\ntagger ${who('Release Bot', 'release@bench.invalid')}\n`);
        emitData(`Release v0.${tagNo}\n\n${textLine(rng)}\n`);
        annotated++;
      } else {
        emit(`reset refs/tags/snapshot-${tagNo}\nfrom :${mainMark}\n\n`);
        lightweight++;
      }
    }
    if (step % RELEASE_EVERY === 0) {
      emit(`reset refs/heads/release/r${step / RELEASE_EVERY}\nfrom :${mainMark}\n\n`);
      branches++;
    }
  }
  emit('done\n');
  return {
    chunks,
    stats: {
      commits,
      merges,
      branches,
      annotatedTags: annotated,
      lightweightTags: lightweight,
      textFiles: textPaths.length,
      binaryFiles: binaryPaths.length,
      binaryBlobs,
    },
  };
}

/** Generates the repository as a bare repo at `dir` (default branch main). */
export async function generateRepo(dir: string, spec: WorkloadSpec): Promise<GeneratedRepo> {
  const { chunks, stats } = buildStream(spec);
  await gitOk(['init', '-q', '--bare', '-b', 'main', dir]);
  await gitOk(['fast-import', '--quiet', '--done'], { cwd: dir, input: chunks, timeoutMs: 300_000 });
  const mainTip = (await gitOk(['rev-parse', 'refs/heads/main'], { cwd: dir })).stdout.trim();
  const counted = Number((await gitOk(['rev-list', '--count', '--all'], { cwd: dir })).stdout.trim());
  if (counted !== stats.commits) throw new Error(`fast-import produced ${counted} commits, expected ${stats.commits}`);
  // fast-import leaves an unoptimised pack; repack so the pushed pack is what a real repo sends.
  await gitOk(['repack', '-adq'], { cwd: dir, timeoutMs: 300_000 });
  const packBytes = await packSize(dir);
  return { dir, mainTip, ...stats, streamBytes: chunks.reduce((n, c) => n + c.length, 0), packBytes };
}

async function packSize(dir: string): Promise<number> {
  const out = (await gitOk(['count-objects', '-v'], { cwd: dir })).stdout;
  const kib = /size-pack: (\d+)/.exec(out);
  return kib ? Number(kib[1]) * 1024 : 0;
}

/**
 * Appends commits with fast-import to an existing repository: for each lane, a chain of
 * `count` tiny commits on `refs/heads/<prefix><lane>` starting at `from`, each changing one
 * small file. Returns the commit ids per lane, in order.
 */
export async function appendChains(
  dir: string,
  from: string,
  lanes: number,
  count: number,
  refPrefix: string,
  filePrefix: string,
): Promise<string[][]> {
  const chunks: Buffer[] = [];
  const emit = (s: string): void => {
    chunks.push(Buffer.from(s, 'utf8'));
  };
  let mark = 0;
  let time = 1_800_000_000;
  const marks: number[][] = [];
  for (let lane = 0; lane < lanes; lane++) {
    const laneMarks: number[] = [];
    for (let i = 0; i < count; i++) {
      const m = ++mark;
      time += 7;
      const message = `${refPrefix}${lane}: change ${i + 1}\n`;
      const body = `lane ${lane} change ${i + 1}\n`;
      emit(`commit refs/heads/${refPrefix}${lane}\nmark :${m}\n`);
      emit(`author Agent ${lane} <agent${lane}@bench.invalid> ${time} +0000\n`);
      emit(`committer Agent ${lane} <agent${lane}@bench.invalid> ${time} +0000\n`);
      emit(`data ${Buffer.byteLength(message)}\n${message}\n`);
      emit(i === 0 ? `from ${from}\n` : `from :${m - 1}\n`);
      emit(`M 100644 inline ${filePrefix}${lane}.txt\ndata ${Buffer.byteLength(body)}\n${body}\n\n`);
      laneMarks.push(m);
    }
    marks.push(laneMarks);
  }
  emit('done\n');
  const marksFile = path.join(dir, `bench-marks-${refPrefix.replace(/[^a-z0-9]/gi, '')}.txt`);
  await gitOk(['fast-import', '--quiet', '--done', `--export-marks=${marksFile}`], { cwd: dir, input: chunks, timeoutMs: 300_000 });
  const table = new Map<number, string>();
  for (const line of (await readFile(marksFile, 'utf8')).split('\n')) {
    const match = /^:(\d+) ([0-9a-f]{40})$/.exec(line);
    if (match) table.set(Number(match[1]), match[2]!);
  }
  return marks.map((laneMarks) => laneMarks.map((m) => table.get(m)!));
}
