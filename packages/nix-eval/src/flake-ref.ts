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
  if (scheme === 'github:') {
    if (!GITHUB_PATH.test(reference)) throw invalid(reference, 'expected github:OWNER/REPO[/REF]');
    return { scheme, url: reference };
  }
  if (scheme === 'path:') {
    if (!reference.startsWith('path:/'))
      throw invalid(reference, 'path: references must be absolute');
    return { scheme, url: reference };
  }
  let parsed: URL;
  try {
    parsed = new URL(reference);
  } catch {
    throw invalid(reference, 'is not a valid URL');
  }
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
