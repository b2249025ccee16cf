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

export interface ApiKeysTable {
  id: string;
  /** SHA-256 of the token, hex. The token itself is never stored. */
  token_hash: string;
  scope: string;
  /** JSON array of grants. */
  resources: string;
  name: string | null;
  /** JSON object of string labels. */
  labels: string;
  /** "root" or the id of the key that created it. */
  created_by: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

export interface ApiKeyTagsTable {
  key_id: string;
  tag: string;
}

export interface SigningKeysTable {
  id: string;
  org_id: string;
  name: string;
  /** The Ed25519 public key as a JWK (JSON). */
  public_jwk: string;
  created_at: string;
}

export interface RepoPoliciesTable {
  repo_id: string;
  /** JSON array of ref rules. */
  rules: string;
  updated_at: string;
}

export interface Database {
  orgs: OrgsTable;
  repos: ReposTable;
  api_keys: ApiKeysTable;
  api_key_tags: ApiKeyTagsTable;
  signing_keys: SigningKeysTable;
  repo_policies: RepoPoliciesTable;
}
