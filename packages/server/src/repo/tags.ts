/** Annotated tag objects, written with `git mktag` (which checks the format). */
import type { GitRunner } from './git-command.ts';
import type { Signature } from './commit-builder.ts';

export async function createAnnotatedTag(
  git: GitRunner,
  gitDir: string,
  tag: { readonly name: string; readonly target: string; readonly message: string; readonly tagger: Signature },
): Promise<string> {
  const seconds = Math.floor(Date.now() / 1000);
  const clean = (text: string) => text.replace(/[<>\n]/g, '');
  const body = [
    `object ${tag.target}`,
    'type commit',
    `tag ${tag.name}`,
    `tagger ${clean(tag.tagger.name)} <${clean(tag.tagger.email)}> ${seconds} +0000`,
    '',
    tag.message.endsWith('\n') ? tag.message : `${tag.message}\n`,
  ].join('\n');
  return (await git.check(['mktag'], { gitDir, input: body })).toString().trim();
}
