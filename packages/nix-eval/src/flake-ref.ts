import { NixError } from './errors';

/** The flake reference schemes Seed serves; everything else is refused before nix runs. */
export const FLAKE_SCHEMES = [
  'github:',
  'git+https://',
  'git+ssh://',
  'git+file://',
  'git://',
  'path:',
  'tarball+https://',
] as const;

export type FlakeScheme = (typeof FLAKE_SCHEMES)[number];

export interface FlakeRef {
  scheme: FlakeScheme;
  /** The reference as nix takes it. */
  url: string;
}

const GIT_REVISION = /^[0-9a-f]{40}$/;
const GITHUB_PATH = /^github:([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)(?:\/([^?]+))?(\?.*)?$/;

// Credentials belong in the fetcher's configuration (a netrc file, nix's access-tokens),
// where they stay secret; in a flake URI they would be stored in Redis and Kubernetes,
// logged and shown wherever the flake is named.
const CREDENTIAL_PARAMETERS = ['access_token', 'private_token', 'token', 'password'];

/** A flake reference fit to print: any credentials in it replaced by `***`. */
export function redactFlakeRef(reference: string): string {
  let url: URL | undefined;
  try {
    url = new URL(reference);
  } catch {
    url = undefined;
  }
  return withoutCredentials(reference, url) ?? reference;
}

/** The reference with any credentials in it replaced by `***`, or undefined when it has none. */
function withoutCredentials(reference: string, url: URL | undefined): string | undefined {
  const query = new URLSearchParams(reference.split('?')[1] ?? '');
  const parameters = CREDENTIAL_PARAMETERS.filter((name) => query.has(name));
  // ssh names the remote account in the URI (git@host); only a password is a secret there.
  const user = url !== undefined && url.username !== '' && !reference.startsWith('git+ssh://');
  const password = url !== undefined && url.password !== '';
  if (!user && !password && parameters.length === 0) return undefined;
  let redacted = reference;
  if (url !== undefined && (user || password)) {
    redacted = redacted.replace(/^([a-z+]+:\/\/)[^@/]*@/, `$1${user ? '***' : url.username}:***@`);
  }
  for (const name of parameters) {
    redacted = redacted.replace(new RegExp(`([?&]${name}=)[^&]*`), '$1***');
  }
  return redacted;
}

function invalid(reference: string, why: string): NixError {
  return new NixError('invalid-reference', `flake reference "${reference}": ${why}`);
}

/**
 * Checks a flake reference against the schemes Seed accepts. Seed appends its own
 * attribute paths, so a `#fragment` is refused, as is anything nix could read as an
 * option or that names a relative path (which would depend on the builder's cwd).
 */
export function parseFlakeRef(reference: string): FlakeRef {
  if (reference.length === 0 || reference.length > 2048) {
    throw invalid(reference, 'must be 1 to 2048 characters');
  }
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\s\u0000-\u001f\u007f]/.test(reference)) {
    throw invalid(reference, 'must not contain whitespace or control characters');
  }
  const scheme = FLAKE_SCHEMES.find((candidate) => reference.startsWith(candidate));
  if (scheme === undefined) {
    throw invalid(reference, `unsupported scheme (Seed accepts ${FLAKE_SCHEMES.join(' ')})`);
  }
  if (reference.includes('#')) {
    throw invalid(reference, 'must not name an output (#...): Seed evaluates seeds.<name> itself');
  }
  let url: URL | undefined;
  if (scheme !== 'github:' && scheme !== 'path:') {
    try {
      url = new URL(reference);
    } catch {
      throw invalid(reference, 'is not a valid URL');
    }
  }
  const redacted = withoutCredentials(reference, url);
  if (redacted !== undefined) {
    throw invalid(
      redacted,
      "carries credentials: give them to the fetcher (a netrc file, nix's access-tokens), not in the flake URI",
    );
  }
  if (scheme === 'github:') {
    if (!GITHUB_PATH.test(reference)) throw invalid(reference, 'expected github:OWNER/REPO[/REF]');
    return { scheme, url: reference };
  }
  if (scheme === 'path:') {
    if (!reference.startsWith('path:/'))
      throw invalid(reference, 'path: references must be absolute');
    return { scheme, url: reference };
  }
  const parsed = url!;
  if (scheme !== 'git+file://' && parsed.hostname === '') {
    throw invalid(reference, 'has no host');
  }
  if (scheme === 'git+file://' && parsed.hostname !== '') {
    throw invalid(reference, 'git+file: references must be absolute (git+file:///path)');
  }
  return { scheme, url: reference };
}

/**
 * The reference of one commit of a flake, as the builder evaluates it. `branch` lets nix
 * find a commit that is not on the repository's default branch.
 */
export function pinFlakeRef(reference: string, revision: string, branch?: string): FlakeRef {
  const flake = parseFlakeRef(reference);
  if (!GIT_REVISION.test(revision)) {
    throw invalid(reference, `revision "${revision}" is not a 40-digit git commit id`);
  }
  if (flake.scheme === 'github:') {
    const [, owner, repo, , query = ''] = GITHUB_PATH.exec(flake.url) ?? [];
    return { scheme: flake.scheme, url: `github:${owner}/${repo}/${revision}${query}` };
  }
  if (flake.scheme === 'path:' || flake.scheme === 'tarball+https://') {
    throw invalid(reference, `${flake.scheme} references cannot be pinned to a git revision`);
  }
  const [base = '', query = ''] = splitQuery(flake.url);
  const params = new URLSearchParams(query);
  params.set('rev', revision);
  if (branch !== undefined) params.set('ref', branch);
  return parseFlakeRef(`${base}?${params.toString()}`);
}

function splitQuery(url: string): [string, string] {
  const at = url.indexOf('?');
  return at === -1 ? [url, ''] : [url.slice(0, at), url.slice(at + 1)];
}
