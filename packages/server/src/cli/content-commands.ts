/**
 * Read commands (`grove cat`, `ls`, `tree`, `log`, `show`, `diff`, `blame`,
 * `archive`): files and history without a clone. `cat`, `archive` and `diff` write
 * raw bytes or text to stdout, streamed; the others print JSON.
 */
import { once } from 'node:events';
import { open, type FileHandle } from 'node:fs/promises';
import type { Command } from 'commander';
import type { ByteRange, Grove } from '@grove/sdk';
import { clientFromEnv, splitRepo, UsageError } from './client-commands.ts';

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Copies a stream to stdout with backpressure; a closed pipe (`| head`) ends quietly. */
async function writeStream(body: ReadableStream<Uint8Array>): Promise<void> {
  let failure: NodeJS.ErrnoException | null = null;
  const onError = (error: NodeJS.ErrnoException) => {
    failure = error;
    process.stdout.emit('drain');
  };
  process.stdout.on('error', onError);
  try {
    for await (const chunk of body) {
      if (failure !== null) break;
      if (!process.stdout.write(chunk)) await once(process.stdout, 'drain');
    }
  } finally {
    process.stdout.off('error', onError);
  }
  if (failure !== null && (failure as NodeJS.ErrnoException).code !== 'EPIPE') throw failure;
}

/** `cat --blob --reuse`: the blob to stdout, its chunks taken from an older local version where they match. */
async function writeReusing(grove: Grove, org: string, repo: string, oid: string, previousPath: string): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(previousPath, 'r');
  } catch (error) {
    throw new UsageError(`--reuse ${previousPath}: ${(error as Error).message}`);
  }
  try {
    const previous = {
      size: (await handle.stat()).size,
      read: async (offset: number, length: number) => {
        const bytes = Buffer.allocUnsafe(length);
        let done = 0;
        while (done < length) {
          const { bytesRead } = await handle.read(bytes, done, length - done, offset + done);
          if (bytesRead === 0) throw new Error(`${previousPath} changed while it was read`);
          done += bytesRead;
        }
        return bytes;
      },
    };
    let reused = 0;
    let downloaded = 0;
    const counted = async function* (): AsyncGenerator<Uint8Array> {
      for await (const piece of grove.blobs.downloadReusing(org, repo, oid, previous)) {
        if (piece.reused) reused += piece.bytes.length;
        else downloaded += piece.bytes.length;
        yield piece.bytes;
      }
    };
    await writeStream(ReadableStream.from(counted()));
    process.stderr.write(`grove: ${reused} bytes reused from ${previousPath}, ${downloaded} downloaded\n`);
  } finally {
    await handle.close();
  }
}

function positive(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name} must be a positive integer`);
  return n;
}

/** `--range`: START-END (inclusive), START- or -N, as the SDK's byte range. */
export function parseRangeOption(value: string): ByteRange {
  const match = /^(\d*)-(\d*)$/.exec(value.trim());
  if (match === null || (match[1] === '' && match[2] === '')) throw new UsageError(`--range ${JSON.stringify(value)}: write START-END, START- or -N (bytes)`);
  const [, first, last] = match as unknown as [string, string, string];
  if (first === '') {
    if (Number(last) === 0) throw new UsageError('--range -N needs N of 1 or more');
    return { suffix: Number(last) };
  }
  if (last !== '' && Number(last) < Number(first)) throw new UsageError(`--range ${value}: the end is before the start`);
  return last === '' ? { start: Number(first) } : { start: Number(first), end: Number(last) };
}

const refOption = ['--ref <ref>', 'branch, tag or commit sha (default: the default branch)'] as const;

export function registerContentCommands(program: Command): void {
  program.command('cat <org/repo> <path>').description("print a file's bytes (or, with --blob, a blob's by its object id)")
    .option(...refOption)
    .option('--range <range>', 'only these bytes: START-END (inclusive), START- (to the end) or -N (the last N)')
    .option('--blob', 'the second argument is a blob object id, not a path')
    .option('--reuse <file>', 'with --blob, for a big blob: an older version of it on disk; only the chunks it lacks are downloaded (a summary goes to stderr)')
    .action(async (target: string, path: string, options: { ref?: string; range?: string; blob?: boolean; reuse?: string }) => {
      const { org, repo } = splitRepo(target);
      const range = options.range === undefined ? undefined : parseRangeOption(options.range);
      const grove = clientFromEnv();
      if (options.reuse !== undefined && (!options.blob || range !== undefined)) throw new UsageError('--reuse needs --blob and no --range (it rebuilds a whole blob)');
      if (options.blob) {
        if (options.ref !== undefined) throw new UsageError('--ref does not apply to --blob (an object id names the bytes)');
        if (options.reuse !== undefined) return writeReusing(grove, org, repo, path, options.reuse);
        // The whole blob resumes over dropped connections (download); a range is one request.
        if (range === undefined) return writeStream(ReadableStream.from(grove.blobs.download(org, repo, path)));
        const blob = await grove.blobs.open(org, repo, path, { range });
        if (blob.body !== null) await writeStream(blob.body);
        return;
      }
      const file = await grove.contents.openFile(org, repo, path, { ...(options.ref !== undefined ? { ref: options.ref } : {}), ...(range !== undefined ? { range } : {}) });
      if (file.body !== null) await writeStream(file.body);
    });

  program.command('chunks <org/repo> <oid>').description("list a big blob's content-defined chunks (SHA-256, offset, length) as JSON")
    .action(async (target: string, oid: string) => {
      const { org, repo } = splitRepo(target);
      print(await clientFromEnv().blobs.chunks(org, repo, oid));
    });

  program.command('ls <org/repo> [path]').description('list a directory as JSON')
    .option(...refOption)
    .option('--recursive', 'everything below the directory')
    .action(async (target: string, path: string | undefined, options: { ref?: string; recursive?: boolean }) => {
      const { org, repo } = splitRepo(target);
      const grove = clientFromEnv();
      if (options.recursive) print(await grove.contents.tree(org, repo, options.ref ?? '', { path: path ?? '', recursive: true }));
      else print(await grove.contents.list(org, repo, path ?? '', options.ref !== undefined ? { ref: options.ref } : {}));
    });

  program.command('tree <org/repo> [ref]').description('list the tree at a ref as JSON')
    .option('--path <path>', 'directory to list (default: the root)')
    .option('--recursive', 'everything below the directory')
    .option('--limit <n>', 'most entries')
    .action(async (target: string, ref: string | undefined, options: { path?: string; recursive?: boolean; limit?: string }) => {
      const { org, repo } = splitRepo(target);
      const limit = positive('--limit', options.limit);
      print(await clientFromEnv().contents.tree(org, repo, ref ?? '', {
        ...(options.path !== undefined ? { path: options.path } : {}),
        ...(options.recursive ? { recursive: true } : {}),
        ...(limit !== undefined ? { limit } : {}),
      }));
    });

  program.command('log <org/repo>').description('list commits, newest first, as JSON')
    .option(...refOption)
    .option('--path <path>', 'only commits that change this path')
    .option('--limit <n>', 'page size').option('--cursor <cursor>', 'page cursor')
    .action(async (target: string, options: { ref?: string; path?: string; limit?: string; cursor?: string }) => {
      const { org, repo } = splitRepo(target);
      const limit = positive('--limit', options.limit);
      print(await clientFromEnv().contents.commits(org, repo, {
        ...(options.ref !== undefined ? { ref: options.ref } : {}),
        ...(options.path !== undefined ? { path: options.path } : {}),
        ...(limit !== undefined ? { limit } : {}),
        ...(options.cursor !== undefined ? { cursor: options.cursor } : {}),
      }));
    });

  program.command('show <org/repo> <sha>').description('show a commit and the files it changed, as JSON')
    .action(async (target: string, sha: string) => {
      const { org, repo } = splitRepo(target);
      print(await clientFromEnv().contents.commit(org, repo, sha));
    });

  program.command('diff <org/repo> <base...head>').description('what head adds since it forked from base: a unified diff (or --json)')
    .option('--json', 'the comparison as JSON: commits, files, hunks')
    .option('--max-files <n>', 'with --json: files listed').option('--max-lines <n>', 'with --json: hunk lines')
    .action(async (target: string, spec: string, options: { json?: boolean; maxFiles?: string; maxLines?: string }) => {
      const { org, repo } = splitRepo(target);
      const dots = spec.indexOf('...');
      if (dots <= 0 || dots + 3 >= spec.length) throw new UsageError(`expected BASE...HEAD, got ${JSON.stringify(spec)}`);
      const [base, head] = [spec.slice(0, dots), spec.slice(dots + 3)];
      const grove = clientFromEnv();
      if (!options.json) return writeStream(await grove.diffs.patchStream(org, repo, base, head));
      const maxFiles = positive('--max-files', options.maxFiles);
      const maxLines = positive('--max-lines', options.maxLines);
      print(await grove.diffs.compare(org, repo, base, head, { ...(maxFiles !== undefined ? { maxFiles } : {}), ...(maxLines !== undefined ? { maxLines } : {}) }));
    });

  program.command('blame <org/repo> <path>').description('which commit last changed each line, as JSON')
    .option(...refOption)
    .action(async (target: string, path: string, options: { ref?: string }) => {
      const { org, repo } = splitRepo(target);
      print(await clientFromEnv().contents.blame(org, repo, path, options.ref !== undefined ? { ref: options.ref } : {}));
    });

  program.command('archive <org/repo> <ref>').description('write the files of a ref as .tar.gz to stdout (grove archive acme/app main > app.tar.gz)')
    .option('--format <format>', 'tar.gz or zip', 'tar.gz')
    .action(async (target: string, ref: string, options: { format: string }) => {
      const { org, repo } = splitRepo(target);
      if (options.format !== 'tar.gz' && options.format !== 'zip') throw new UsageError('--format must be tar.gz or zip');
      if (process.stdout.isTTY) throw new UsageError('refusing to write an archive to a terminal: redirect stdout to a file');
      await writeStream(await clientFromEnv().contents.archive(org, repo, ref, { format: options.format }));
    });
}
