/**
 * @grove/sdk: a typed client for the Grove API with no runtime dependencies.
 *
 *   const grove = new Grove({ baseUrl: 'http://127.0.0.1:8080', token });
 *   await grove.orgs.create({ name: 'acme' });
 *   const repo = await grove.repos.create('acme', { name: 'app' });
 */
import { Admin } from './admin.ts';
import { ApiKeys } from './api-keys.ts';
import { Blobs } from './blobs.ts';
import { Commits } from './commits.ts';
import { Events, Webhooks } from './events.ts';
import { Merges } from './merges.ts';
import { Branches, Tags } from './refs.ts';
import { Contents } from './contents.ts';
import { Credentials } from './credentials.ts';
import { Diffs } from './diffs.ts';
import { Orgs } from './orgs.ts';
import { Policies } from './policies.ts';
import { Repos } from './repos.ts';
import { SigningKeys } from './signing-keys.ts';
import { Transport, type GroveOptions } from './transport.ts';
import { Syncs, Upstreams } from './upstreams.ts';

export class Grove {
  readonly orgs: Orgs;
  readonly repos: Repos;
  readonly apiKeys: ApiKeys;
  readonly signingKeys: SigningKeys;
  readonly policies: Policies;
  /** Files, trees, history, blame and archives, without a clone. */
  readonly contents: Contents;
  /** Blobs by object id: ranges, sizes, resumable downloads. */
  readonly blobs: Blobs;
  /** Comparisons of two refs (base...head), as JSON or a unified diff. */
  readonly diffs: Diffs;
  /** Commits without a clone. */
  readonly commits: Commits;
  readonly branches: Branches;
  readonly tags: Tags;
  readonly merges: Merges;
  readonly webhooks: Webhooks;
  /** The live event stream and the audit log. */
  readonly events: Events;
  /** An org's write-only secrets for reaching remotes. */
  readonly credentials: Credentials;
  /** The remotes a repository pulls from, pushes to or mirrors. */
  readonly upstreams: Upstreams;
  /** Sync runs of an upstream, with per-ref outcomes; `wait` follows one to its end. */
  readonly syncs: Syncs;
  readonly admin: Admin;

  constructor(options: GroveOptions) {
    const http = new Transport(options);
    this.orgs = new Orgs(http);
    this.repos = new Repos(http);
    this.apiKeys = new ApiKeys(http);
    this.signingKeys = new SigningKeys(http);
    this.policies = new Policies(http);
    this.contents = new Contents(http);
    this.blobs = new Blobs(http);
    this.diffs = new Diffs(http);
    this.commits = new Commits(http);
    this.branches = new Branches(http);
    this.tags = new Tags(http);
    this.merges = new Merges(http);
    this.webhooks = new Webhooks(http);
    this.events = new Events(http);
    this.credentials = new Credentials(http);
    this.upstreams = new Upstreams(http);
    this.syncs = new Syncs(http);
    this.admin = new Admin(http);
  }
}

export { GroveApiError } from './errors.ts';
export type { GroveOptions } from './transport.ts';
export { mintToken, MAX_TOKEN_TTL_SECONDS, type MintTokenInput } from './mint-token.ts';
export type { CreateApiKeyInput } from './api-keys.ts';
export type { SecretKeyRotation } from './admin.ts';
export type { CreateRepoInput, FsckProblem, FsckReport, ImportRepoInput, RepoImport, UpdateRepoInput } from './repos.ts';
export type { ApiKey, CreatedApiKey, Grant, Jwk, Org, Page, PageOptions, RefPolicy, RefRule, Repo, Scope, SigningKey, WebCryptoKey } from './types.ts';
export type { Blame, BlameRange, ByteRange, ChangedFile, ChangeStatus, CommitDetail, CommitInfo, CommitSignature, DirectoryListing, FileContent, FileMeta, FileOptions, FileStream, ReadOptions, TreeEntry, TreeListing } from './contents.ts';
export type { BlobContent, BlobInfo, BlobReadOptions, ChunkListing, DownloadOptions, LocalBytes, ReusedPiece } from './blobs.ts';
export type { CommitResult, CreateCommitInput, FileChange, Signature, UploadFileInput } from './commits.ts';
export type { Branch, ListRefsOptions, Tag } from './refs.ts';
export { verifyWebhook } from './events.ts';
export type { AuditEntry, GroveEvent, StreamOptions, Webhook, WebhookDelivery, WebhookInput } from './events.ts';
export type { MergeConflictDetails, MergeInput, MergeResult } from './merges.ts';
export type { Credential, CredentialInput } from './credentials.ts';
export { SyncWaitTimeoutError } from './upstreams.ts';
export type { RefOutcome, RefReport, SyncDirection, SyncInput, SyncRule, SyncRun, SyncRunStatus, Upstream, UpstreamInput, WaitOptions } from './upstreams.ts';
export type { CompareOptions, Comparison, DiffFile, DiffHunk } from './diffs.ts';
export { Chunker, chunkLengths, CHUNK_MAX_BYTES, CHUNK_MIN_BYTES } from './chunker.ts';
