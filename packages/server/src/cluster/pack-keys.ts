/** Where a repository's packs live in the object store: `repos/<repoId>/pack-<sha1>.{pack,idx}`. */
export function packKey(repoId: string, name: string, extension: 'pack' | 'idx'): string {
  return `repos/${repoId}/pack-${name}.${extension}`;
}
