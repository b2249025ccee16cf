import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkRemoteUrl, classifyRemoteFailure, redact, remoteGitEnv, type RemoteAccess } from './remote-env.ts';

const SECRET = 'ghp_s3cr3tT0ken';
const USER = 'x-access-token';
const BASIC = Buffer.from(`${USER}:${SECRET}`).toString('base64');
const withCredential: RemoteAccess = { url: 'https://git.example.com/acme/app.git', credential: { username: USER, secret: SECRET }, pinnedAddress: '203.0.113.7' };
const publicRemote: RemoteAccess = { url: 'https://git.example.com/acme/app.git', credential: null, pinnedAddress: null };

/** The config the environment sets, as key → values in order. */
function configOf(env: Record<string, string>): [string, string][] {
  const count = Number(env.GIT_CONFIG_COUNT);
  assert.ok(Number.isInteger(count) && count > 0, `GIT_CONFIG_COUNT ${env.GIT_CONFIG_COUNT}`);
  const entries: [string, string][] = [];
  for (let i = 0; i < count; i++) {
    const key = env[`GIT_CONFIG_KEY_${i}`];
    const value = env[`GIT_CONFIG_VALUE_${i}`];
    assert.ok(key !== undefined && value !== undefined, `entry ${i} is missing`);
    entries.push([key, value]);
  }
  return entries;
}
const valuesOf = (env: Record<string, string>, key: string): string[] => configOf(env).filter(([k]) => k === key).map(([, v]) => v);

describe('remoteGitEnv', () => {
  it('sets GIT_CONFIG_COUNT to the number of key/value pairs, and nothing else', () => {
    for (const access of [withCredential, publicRemote]) {
      for (const allowHttp of [false, true]) {
        const env = remoteGitEnv(access, { allowHttp });
        const entries = configOf(env);
        assert.deepEqual(Object.keys(env).sort(), ['GIT_CONFIG_COUNT', ...entries.flatMap((_, i) => [`GIT_CONFIG_KEY_${i}`, `GIT_CONFIG_VALUE_${i}`])].sort());
      }
    }
  });

  it('sends the credential as an Authorization: Basic base64(user:secret) extra header', () => {
    const env = remoteGitEnv(withCredential, { allowHttp: false });
    assert.deepEqual(valuesOf(env, 'http.extraHeader'), [`Authorization: Basic ${BASIC}`]);
    const decoded = Buffer.from(valuesOf(env, 'http.extraHeader')[0]!.slice('Authorization: Basic '.length), 'base64').toString('utf8');
    assert.equal(decoded, `${USER}:${SECRET}`);
  });

  it('never puts the secret in a config key, nor in the raw form in any value', () => {
    const env = remoteGitEnv(withCredential, { allowHttp: true });
    for (const [key, value] of configOf(env)) {
      assert.ok(!key.includes(SECRET), key);
      assert.ok(!value.includes(SECRET), value);
    }
    for (const name of Object.keys(env)) assert.ok(!name.includes(SECRET) && !name.includes(BASIC), name);
  });

  it('sends no extra header for a remote without a credential', () => {
    assert.deepEqual(valuesOf(remoteGitEnv(publicRemote, { allowHttp: true }), 'http.extraHeader'), []);
  });

  it('turns off redirects, credential helpers and credentials in URLs, and ends stalled transfers', () => {
    const env = remoteGitEnv(publicRemote, { allowHttp: false });
    assert.deepEqual(valuesOf(env, 'http.followRedirects'), ['false']);
    assert.deepEqual(valuesOf(env, 'credential.helper'), ['']);
    assert.deepEqual(valuesOf(env, 'transfer.credentialsInUrl'), ['die']);
    assert.deepEqual(valuesOf(env, 'http.lowSpeedLimit'), ['1000']);
    assert.deepEqual(valuesOf(env, 'http.lowSpeedTime'), ['600']);
  });

  it('allows https only, and plain http only when the operator allows insecure remotes', () => {
    const secure = remoteGitEnv(publicRemote, { allowHttp: false });
    assert.deepEqual(valuesOf(secure, 'protocol.allow'), ['never']);
    assert.deepEqual(valuesOf(secure, 'protocol.https.allow'), ['always']);
    assert.deepEqual(valuesOf(secure, 'protocol.http.allow'), []);
    const insecure = remoteGitEnv({ ...publicRemote, url: 'http://127.0.0.1:4000/r.git' }, { allowHttp: true });
    assert.deepEqual(valuesOf(insecure, 'protocol.http.allow'), ['always']);
    assert.deepEqual(valuesOf(insecure, 'protocol.allow'), ['never']);
  });

  it('pins the approved address as host:port:address, with the default port of the scheme', () => {
    assert.deepEqual(valuesOf(remoteGitEnv(withCredential, { allowHttp: false }), 'http.curloptResolve'), ['git.example.com:443:203.0.113.7']);
    assert.deepEqual(valuesOf(remoteGitEnv({ ...withCredential, url: 'https://git.example.com:443/x.git' }, { allowHttp: false }), 'http.curloptResolve'), ['git.example.com:443:203.0.113.7']);
    assert.deepEqual(valuesOf(remoteGitEnv({ ...withCredential, url: 'http://git.example.com/x.git' }, { allowHttp: true }), 'http.curloptResolve'), ['git.example.com:80:203.0.113.7']);
    assert.deepEqual(valuesOf(remoteGitEnv({ ...withCredential, url: 'https://git.example.com:8443/x.git' }, { allowHttp: false }), 'http.curloptResolve'), ['git.example.com:8443:203.0.113.7']);
    assert.deepEqual(valuesOf(remoteGitEnv({ ...withCredential, url: 'http://git.example.com:3000/x.git' }, { allowHttp: true }), 'http.curloptResolve'), ['git.example.com:3000:203.0.113.7']);
  });

  it('puts a pinned IPv6 address in brackets', () => {
    assert.deepEqual(valuesOf(remoteGitEnv({ ...withCredential, pinnedAddress: '2001:db8::7' }, { allowHttp: false }), 'http.curloptResolve'), ['git.example.com:443:[2001:db8::7]']);
  });

  it('lowercases the host name as the URL does', () => {
    assert.deepEqual(valuesOf(remoteGitEnv({ ...withCredential, url: 'https://Git.Example.COM/x.git' }, { allowHttp: false }), 'http.curloptResolve'), ['git.example.com:443:203.0.113.7']);
  });

  it('pins nothing when the URL already names an address', () => {
    assert.deepEqual(valuesOf(remoteGitEnv({ ...withCredential, url: 'https://203.0.113.7/x.git', pinnedAddress: null }, { allowHttp: false }), 'http.curloptResolve'), []);
  });

  it('keeps the count right for every combination of credential, pinning and http (property)', () => {
    const access = fc.record({
      url: fc.constantFrom('https://h.example/x.git', 'http://h.example:8080/x.git', 'https://h.example:9/x'),
      credential: fc.option(fc.record({ username: fc.string({ minLength: 1 }), secret: fc.string({ minLength: 8 }).filter((s) => !s.includes('\n')) }), { nil: null }),
      pinnedAddress: fc.option(fc.oneof(fc.ipV4(), fc.ipV6()), { nil: null }),
    });
    fc.assert(fc.property(access, fc.boolean(), (a, allowHttp) => {
      const env = remoteGitEnv(a, { allowHttp });
      const entries = configOf(env);
      assert.equal(entries.length, 7 + (allowHttp ? 1 : 0) + (a.credential ? 1 : 0) + (a.pinnedAddress ? 1 : 0));
      assert.equal(Object.keys(env).length, 1 + 2 * entries.length);
      if (a.credential) for (const [key] of entries) assert.ok(!key.includes(a.credential.secret));
    }), { numRuns: 300 });
  });
});

describe('redact', () => {
  it('removes the raw secret wherever it appears', () => {
    assert.equal(redact(`error: token ${SECRET} rejected; again ${SECRET}`, withCredential), 'error: token <redacted> rejected; again <redacted>');
  });

  it('removes the secret in its Basic form', () => {
    assert.equal(redact(`> Authorization: Basic ${BASIC}\n`, withCredential), '> Authorization: Basic <redacted>\n');
  });

  it('removes the user info of any URL', () => {
    assert.equal(redact(`fatal: unable to access 'https://${USER}:${SECRET}@github.com/a/b.git/': 403`, withCredential), "fatal: unable to access 'https://<redacted>@github.com/a/b.git/': 403");
    assert.equal(redact("fatal: Authentication failed for 'https://alice:pw@h.example/x.git/'", { credential: null }), "fatal: Authentication failed for 'https://<redacted>@h.example/x.git/'");
    assert.equal(redact('HTTP://bob@h/x', { credential: null }), 'HTTP://<redacted>@h/x');
  });

  it('removes the whole user info even when the password holds a raw @', () => {
    assert.equal(redact('https://u:p@ss@host/x', { credential: null }), 'https://<redacted>@host/x');
  });

  it('leaves other text alone, e-mail addresses and scp-like remotes included', () => {
    for (const text of ['fatal: repository \'https://h.example/x.git/\' not found', 'Author: Alice <alice@example.com>', 'git@github.com:acme/app.git', 'remote: Resolving deltas: 100% (3/3)', '']) {
      assert.equal(redact(text, withCredential), text);
      assert.equal(redact(text, { credential: null }), text);
    }
  });

  it('never lets the secret or its Basic form through (property)', () => {
    const secret = fc.string({ minLength: 4, maxLength: 40 });
    fc.assert(fc.property(fc.string(), fc.string(), secret, fc.constantFrom('raw', 'basic'), (before, after, s, form) => {
      const access = { credential: { username: USER, secret: s } };
      const shown = form === 'raw' ? s : Buffer.from(`${USER}:${s}`).toString('base64');
      const out = redact(`${before}${shown}${after}`, access);
      assert.ok(!out.includes(shown), JSON.stringify({ before, shown, after, out }));
    }), { numRuns: 500 });
  });
});

describe('checkRemoteUrl', () => {
  const secure = { allowHttp: false };
  const insecure = { allowHttp: true };

  it('accepts an https URL, and an http one when insecure remotes are allowed', () => {
    assert.equal(checkRemoteUrl('https://github.com/acme/app.git', secure), null);
    assert.equal(checkRemoteUrl('https://git.example.com:8443/a/b', secure), null);
    assert.equal(checkRemoteUrl('http://127.0.0.1:4000/r.git', insecure), null);
    assert.equal(checkRemoteUrl('https://github.com/acme/app.git', insecure), null);
  });

  it('refuses what is no absolute URL', () => {
    for (const value of ['', 'github.com/acme/app', '/srv/git/app.git', 'git@github.com:acme/app.git', 'https://']) {
      assert.equal(checkRemoteUrl(value, secure), 'url must be an absolute http(s) URL', value);
    }
  });

  it('refuses ssh, git, file and other transports', () => {
    for (const value of ['ssh://git@github.com/acme/app.git', 'git://github.com/acme/app.git', 'file:///srv/app.git', 'ftp://h/x', 'ext::sh -c touch% /tmp/pwned']) {
      assert.equal(checkRemoteUrl(value, insecure), 'url must be https (ssh and other transports are not supported)', value);
    }
  });

  it('refuses plain http unless insecure remotes are allowed, naming the setting', () => {
    assert.equal(checkRemoteUrl('http://git.example.com/x.git', secure), 'url must be https (plain http remotes need GROVE_ALLOW_INSECURE_REMOTES=true)');
  });

  it('refuses credentials in the URL', () => {
    for (const value of ['https://alice:secret@github.com/x.git', 'https://token@github.com/x.git', 'https://:secret@github.com/x.git']) {
      assert.equal(checkRemoteUrl(value, secure), 'url must not carry credentials: store them as a credential and give its credentialId', value);
    }
  });

  it('refuses a query or a fragment', () => {
    assert.equal(checkRemoteUrl('https://github.com/x.git?token=1', secure), 'url must not have a query or a fragment');
    assert.equal(checkRemoteUrl('https://github.com/x.git#main', secure), 'url must not have a query or a fragment');
  });
});

describe('classifyRemoteFailure', () => {
  it('recognizes a rejected or missing credential', () => {
    for (const stderr of [
      "fatal: could not read Username for 'http://127.0.0.1:1': terminal prompts disabled",
      "fatal: could not read Password for 'https://x-access-token@github.com': terminal prompts disabled",
      "remote: Invalid username or password.\nfatal: Authentication failed for 'https://x/'",
      "remote: Permission to acme/app.git denied to bot.\nfatal: unable to access 'https://github.com/acme/app.git/': The requested URL returned error: 403",
      "fatal: unable to access 'https://h/x.git/': The requested URL returned error: 401",
      'error: RPC failed; HTTP 401 curl 22 The requested URL returned error: 401',
    ]) assert.equal(classifyRemoteFailure(stderr), 'credential_rejected', stderr);
  });

  it('recognizes a repository that is not there', () => {
    for (const stderr of [
      "fatal: repository 'http://h/x.git/' not found",
      "remote: Repository not found.\nfatal: repository 'https://github.com/acme/gone.git/' not found",
      "fatal: unable to access 'https://h/x.git/': The requested URL returned error: 404",
      'error: RPC failed; HTTP 404 curl 22 The requested URL returned error: 404',
      "fatal: 'https://h/x' does not appear to be a git repository",
    ]) assert.equal(classifyRemoteFailure(stderr), 'remote_not_found', stderr);
  });

  it('recognizes a remote that cannot be reached', () => {
    for (const stderr of [
      "fatal: unable to access 'http://127.0.0.1:9/x.git/': Failed to connect to 127.0.0.1 port 9 after 0 ms: Connection refused",
      "fatal: unable to access 'https://nowhere.invalid/x.git/': Could not resolve host: nowhere.invalid",
      "fatal: unable to access 'https://h/x.git/': Failed to connect to h port 443 after 75001 ms: Connection timed out",
      "fatal: unable to access 'https://h/x.git/': Operation timed out after 300000 milliseconds with 0 out of 0 bytes received",
      "fatal: unable to access 'https://h/x.git/': SSL certificate problem: self-signed certificate",
      "fatal: unable to access 'https://h/x.git/': gnutls_handshake() failed: The TLS connection was non-properly terminated.",
      "fatal: unable to access 'https://h/x.git/': Empty reply from server",
      'error: RPC failed; curl 18 transfer closed with outstanding read data remaining\nfatal: early EOF',
      "fatal: unable to access 'https://h/x.git/': Recv failure: Connection reset by peer",
      'fatal: unable to update url base from redirection:\n  asked for: https://h/x.git/info/refs?service=git-upload-pack\n   redirect: https://evil/x',
    ]) assert.equal(classifyRemoteFailure(stderr), 'remote_unreachable', stderr);
  });

  it('calls anything else a remote error', () => {
    for (const stderr of [
      "fatal: unable to access 'https://h/x.git/': The requested URL returned error: 502",
      'fatal: protocol error: bad pack header',
      "error: failed to push some refs to 'https://h/x.git'",
      '',
    ]) assert.equal(classifyRemoteFailure(stderr), 'remote_error', stderr);
  });

  it('prefers the credential over the rest when git printed several reasons', () => {
    assert.equal(classifyRemoteFailure("error: RPC failed; HTTP 403 curl 22 The requested URL returned error: 403\nfatal: the remote end hung up unexpectedly"), 'credential_rejected');
  });
});
