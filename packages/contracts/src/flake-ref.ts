/**
 * The flake references Seed accepts: a contract between the operator's registry (webhook),
 * the builder that evaluates them, the reconciler that takes generations of them and the
 * CLI that finds them. Checked before anything runs nix.
 */

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

/** A flake reference Seed does not accept; the message says why. */
export class InvalidFlakeRef extends Error {
  override readonly name = 'InvalidFlakeRef';
  readonly retryable = false;

  constructor(reference: string, why: string) {
    super(`flake reference "${reference}": ${why}`);
  }
}

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

/** `github:OWNER/REPO[/REF][?query]`, with the parts captured. */
export const GITHUB_FLAKE_REF =
  /^github:([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)(?:\/([^?]+))?(\?.*)?$/;

/**
 * Checks a flake reference against the schemes Seed accepts. Seed appends its own
 * attribute paths, so a `#fragment` is refused, as is anything nix could read as an
 * option or that names a relative path (which would depend on the builder's cwd).
 */
export function parseFlakeRef(reference: string): FlakeRef {
  if (reference.length === 0 || reference.length > 2048) {
    throw new InvalidFlakeRef(reference, 'must be 1 to 2048 characters');
  }
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\s\u0000-\u001f\u007f]/.test(reference)) {
    throw new InvalidFlakeRef(reference, 'must not contain whitespace or control characters');
  }
  const scheme = FLAKE_SCHEMES.find((candidate) => reference.startsWith(candidate));
  if (scheme === undefined) {
    throw new InvalidFlakeRef(
      reference,
      `unsupported scheme (Seed accepts ${FLAKE_SCHEMES.join(' ')})`,
    );
  }
  if (reference.includes('#')) {
    throw new InvalidFlakeRef(
      reference,
      'must not name an output (#...): Seed evaluates seeds.<name> itself',
    );
  }
  let url: URL | undefined;
  if (scheme !== 'github:' && scheme !== 'path:') {
    try {
      url = new URL(reference);
    } catch {
      throw new InvalidFlakeRef(reference, 'is not a valid URL');
    }
  }
  const redacted = withoutCredentials(reference, url);
  if (redacted !== undefined) {
    throw new InvalidFlakeRef(
      redacted,
      "carries credentials: give them to the fetcher (a netrc file, nix's access-tokens), not in the flake URI",
    );
  }
  if (scheme === 'github:') {
    if (!GITHUB_FLAKE_REF.test(reference)) {
      throw new InvalidFlakeRef(reference, 'expected github:OWNER/REPO[/REF]');
    }
    return { scheme, url: reference };
  }
  if (scheme === 'path:') {
    if (!reference.startsWith('path:/')) {
      throw new InvalidFlakeRef(reference, 'path: references must be absolute');
    }
    return { scheme, url: reference };
  }
  const parsed = url!;
  if (scheme !== 'git+file://' && parsed.hostname === '') {
    throw new InvalidFlakeRef(reference, 'has no host');
  }
  if (scheme === 'git+file://' && parsed.hostname !== '') {
    throw new InvalidFlakeRef(
      reference,
      'git+file: references must be absolute (git+file:///path)',
    );
  }
  return { scheme, url: reference };
}

/**
 * The git remote a flake is fetched from, and the branch its URI names, if any: for the
 * webhook's polls (`git ls-remote`) and the builder's history mirror. Undefined for the
 * schemes that are not git (`path:`, `tarball+https://`). nix's query (ref, rev, dir) is
 * not git's and is dropped from the URL.
 */
export function gitRemoteOf(flake: string): { url: string; ref?: string } | undefined {
  const { scheme, url } = parseFlakeRef(flake);
  if (scheme === 'github:') {
    const [, owner, repo, ref] = GITHUB_FLAKE_REF.exec(url)!;
    return { url: `https://github.com/${owner}/${repo}.git`, ...(ref && { ref }) };
  }
  if (scheme === 'path:' || scheme === 'tarball+https://') return undefined;
  const parsed = new URL(scheme === 'git://' ? url : url.slice('git+'.length));
  const ref = parsed.searchParams.get('ref') ?? undefined;
  parsed.search = '';
  return { url: parsed.toString(), ...(ref && { ref }) };
}
