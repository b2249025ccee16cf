/**
 * The Content-Type of a file read through the API, from its name alone (the bytes
 * are streamed, not sniffed): UTF-8 text for source, markup, config and the usual
 * extensionless files; application/octet-stream for everything else. Browsers are
 * told not to sniff (the route sends X-Content-Type-Options: nosniff), so nothing a
 * repository holds is ever rendered as HTML.
 */

const TEXT_EXTENSIONS = new Set([
  // prose and markup
  'txt', 'text', 'md', 'markdown', 'mdx', 'rst', 'adoc', 'asciidoc', 'org', 'tex', 'bib', 'html', 'htm', 'xhtml', 'xml', 'svg', 'css', 'scss', 'sass', 'less',
  // data and config
  'json', 'jsonc', 'json5', 'jsonl', 'ndjson', 'yaml', 'yml', 'toml', 'ini', 'cfg', 'conf', 'config', 'properties', 'env', 'csv', 'tsv', 'lock', 'editorconfig',
  'gitignore', 'gitattributes', 'gitmodules', 'dockerignore', 'npmrc', 'nvmrc', 'proto', 'graphql', 'gql', 'sql', 'prisma', 'tf', 'tfvars', 'hcl', 'nix',
  // code
  'js', 'mjs', 'cjs', 'jsx', 'ts', 'mts', 'cts', 'tsx', 'vue', 'svelte', 'astro', 'py', 'pyi', 'rb', 'go', 'rs', 'java', 'kt', 'kts', 'scala', 'groovy', 'gradle',
  'c', 'h', 'cc', 'cpp', 'cxx', 'hpp', 'hh', 'hxx', 'm', 'mm', 'cs', 'fs', 'fsx', 'swift', 'php', 'pl', 'pm', 'lua', 'r', 'jl', 'dart', 'ex', 'exs', 'erl', 'hrl',
  'clj', 'cljs', 'edn', 'hs', 'ml', 'mli', 'elm', 'zig', 'nim', 'v', 'sv', 'vhd', 'sol', 'sh', 'bash', 'zsh', 'fish', 'ps1', 'bat', 'cmd', 'awk', 'sed', 'vim',
  'el', 'lisp', 'scm', 'rkt', 'mk', 'cmake', 'patch', 'diff', 'log', 'pem', 'pub', 'asc',
]);

const TEXT_NAMES = new Set([
  'readme', 'license', 'licence', 'copying', 'authors', 'contributors', 'changelog', 'changes', 'news', 'notice', 'todo', 'makefile', 'gnumakefile',
  'dockerfile', 'containerfile', 'procfile', 'gemfile', 'rakefile', 'vagrantfile', 'jenkinsfile', 'brewfile', 'codeowners', 'owners', 'justfile',
]);

export const TEXT_TYPE = 'text/plain; charset=utf-8';
export const BINARY_TYPE = 'application/octet-stream';

export function contentTypeFor(path: string): string {
  const name = path.slice(path.lastIndexOf('/') + 1).toLowerCase();
  const dot = name.lastIndexOf('.');
  if (dot === -1) return TEXT_NAMES.has(name) ? TEXT_TYPE : BINARY_TYPE;
  const extension = name.slice(dot + 1);
  if (TEXT_EXTENSIONS.has(extension)) return TEXT_TYPE;
  // Dockerfile.dev, Makefile.am, README.old
  return TEXT_NAMES.has(name.slice(0, dot)) ? TEXT_TYPE : BINARY_TYPE;
}
