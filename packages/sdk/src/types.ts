/** Resource shapes returned by the Grove API (camelCase JSON). */

export interface Org {
  id: string;
  name: string;
  createdAt: string;
}

export interface Repo {
  id: string;
  org: string;
  name: string;
  defaultBranch: string;
  description: string;
  /** Smart HTTP URL for git clone/fetch/push. */
  cloneUrl: string;
  createdAt: string;
  updatedAt: string;
}

/** One page of a listing; pass nextCursor back as cursor for the next page (null on the last). */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface PageOptions {
  limit?: number;
  cursor?: string;
}
