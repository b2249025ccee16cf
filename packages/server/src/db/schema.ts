/** The database schema as Kysely sees it. Columns are snake_case; the API speaks camelCase. */
export interface OrgsTable {
  id: string;
  name: string;
  created_at: string;
}

export interface ReposTable {
  id: string;
  org_id: string;
  name: string;
  default_branch: string;
  description: string;
  created_at: string;
  updated_at: string;
}

export interface Database {
  orgs: OrgsTable;
  repos: ReposTable;
}
