/**
 * How git reaches a remote on Grove's behalf (docs/remote-sync.md, "Credentials and remote
 * safety"). Everything goes through the environment of the one git child, never its
 * arguments, a URL or a config file:
 *
 *   GIT_CONFIG_COUNT / GIT_CONFIG_KEY_n / GIT_CONFIG_VALUE_n
 *     http.extraHeader      Authorization: Basic base64(user:secret)  (sent on every request, no 401 round trip)
 *     http.followRedirects  false          (a redirect could carry the header elsewhere)
 *     http.curloptResolve   host:port:ip   (the address the outbound policy approved: no DNS rebinding)
 *     http.lowSpeedLimit/Time               (a stalled transfer ends after 10 minutes, a slow one never does)
 *     protocol.allow        never, https always (http only when the operator allows insecure remotes)
 *     transfer.credentialsInUrl  die
 *     credential.helper     ''             (no helper may answer for the header)
 *
 * and `redact()` scrubs the secret (raw and in its Basic form) and any URL user info from
 * what git printed before it reaches a log line or the database. Pure.
 */

export interface RemoteAccess {
  /** http(s) URL without user info. */
  readonly url: string;
  /** HTTP Basic credentials sent as a header; none for a public remote. */
  readonly credential: { readonly username: string; readonly secret: string } | null;
  /** The address the host name was resolved to and approved for (null: the URL names an address). */
  readonly pinnedAddress: string | null;
}

export interface RemoteEnvOptions {
  /** Whether plain http remotes are allowed (GROVE_ALLOW_INSECURE_REMOTES; tests and private networks). */
  readonly allowHttp: boolean;
}

/** Seconds without progress (below 1 kB/s) after which a transfer is abandoned. */
const STALL_SECONDS = 600;

export function remoteGitEnv(access: RemoteAccess, options: RemoteEnvOptions): Record<string, string> {
  const url = new URL(access.url);
  const entries: [string, string][] = [
    ['http.followRedirects', 'false'],
    ['http.lowSpeedLimit', '1000'],
    ['http.lowSpeedTime', String(STALL_SECONDS)],
    ['protocol.allow', 'never'],
    ['protocol.https.allow', 'always'],
    ['transfer.credentialsInUrl', 'die'],
    ['credential.helper', ''],
  ];
  if (options.allowHttp) entries.push(['protocol.http.allow', 'always']);
  if (access.credential !== null) entries.push(['http.extraHeader', `Authorization: Basic ${basicToken(access.credential)}`]);
  if (access.pinnedAddress !== null) {
    const port = url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80';
    const address = access.pinnedAddress.includes(':') ? `[${access.pinnedAddress}]` : access.pinnedAddress;
    entries.push(['http.curloptResolve', `${url.hostname}:${port}:${address}`]);
  }
  const env: Record<string, string> = { GIT_CONFIG_COUNT: String(entries.length) };
  entries.forEach(([key, value], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = key;
    env[`GIT_CONFIG_VALUE_${i}`] = value;
  });
  return env;
}

function basicToken(credential: { readonly username: string; readonly secret: string }): string {
  return Buffer.from(`${credential.username}:${credential.secret}`).toString('base64');
}

/** Removes the secret, its Basic form and URL user info from `text`. */
export function redact(text: string, access: Pick<RemoteAccess, 'credential'>): string {
  // Greedy to the last '@' before the path: a password may itself contain '@'.
  let out = text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s]*@/gi, '$1<redacted>@');
  if (access.credential !== null) {
    for (const secret of [access.credential.secret, basicToken(access.credential)]) {
      if (secret.length >= 4) out = out.split(secret).join('<redacted>');
    }
  }
  return out;
}

/** Why a remote URL cannot be used (before any resolution), or null. */
export function checkRemoteUrl(value: string, options: RemoteEnvOptions): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'url must be an absolute http(s) URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'url must be https (ssh and other transports are not supported)';
  if (url.protocol === 'http:' && !options.allowHttp) return 'url must be https (plain http remotes need GROVE_ALLOW_INSECURE_REMOTES=true)';
  if (url.username !== '' || url.password !== '') return 'url must not carry credentials: store them as a credential and give its credentialId';
  if (url.search !== '' || url.hash !== '') return 'url must not have a query or a fragment';
  return null;
}

/** What went wrong talking to a remote, from git's stderr: the catalogue's codes for it. */
export type RemoteFailure = 'credential_rejected' | 'remote_not_found' | 'remote_unreachable' | 'remote_error';

export function classifyRemoteFailure(stderr: string): RemoteFailure {
  if (/Authentication failed|could not read (Username|Password)|terminal prompts disabled|The requested URL returned error: 40[13]\b|HTTP 40[13]\b/i.test(stderr)) return 'credential_rejected';
  if (/repository '.*' not found|The requested URL returned error: 404|HTTP 404\b|does not appear to be a git repository/i.test(stderr)) return 'remote_not_found';
  if (/Could not resolve host|Failed to connect|Connection refused|Connection timed out|Operation timed out|SSL|TLS|Empty reply|transfer closed|RPC failed|early EOF|unexpected disconnect|Recv failure|Send failure|redirect/i.test(stderr)) return 'remote_unreachable';
  return 'remote_error';
}
