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
  let parsed: URL;
  try {
    parsed = new URL(reference);
  } catch {
    throw new InvalidFlakeRef(reference, 'is not a valid URL');
  }
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
