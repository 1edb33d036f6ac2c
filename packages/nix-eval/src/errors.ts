/**
 * What went wrong when Seed ran nix, classified so callers can decide without parsing
 * text: `retryable` failures (an unreachable repository, a timeout) may succeed later,
 * the others fail the same way until the flake changes.
 */
export type NixErrorKind =
  | 'invalid-reference' // a flake reference Seed does not accept
  | 'fetch' // unknown revision, unreachable or missing repository
  | 'evaluation' // Nix evaluation failed: syntax error, undefined variable, assertion
  | 'validation' // a seed's meta broke the schema (in Nix or in Seed's own check)
  | 'build' // a derivation failed to build
  | 'timeout' // the process ran past its deadline and was killed
  | 'aborted' // the caller's AbortSignal fired
  | 'output-limit' // the process printed more than the cap allows
  | 'nix'; // nix failed in a way none of the above describes

const RETRYABLE: ReadonlySet<NixErrorKind> = new Set(['timeout', 'nix']);

export interface NixErrorDetails {
  /** `file:line:col` inside the flake, for evaluation errors that have one. */
  location?: string;
  /** The failing derivation, for build errors. */
  derivation?: string;
  /** The last lines of the failing builder's log, for build errors. */
  logTail?: string[];
  /** Whether a later attempt may succeed; defaults by kind. */
  retryable?: boolean;
  /** The tail of nix's stderr, for diagnosis. */
  stderr?: string;
}

export class NixError extends Error {
  override readonly name = 'NixError';
  readonly retryable: boolean;
  readonly location?: string;
  readonly derivation?: string;
  readonly logTail?: string[];
  readonly stderr?: string;

  constructor(
    readonly kind: NixErrorKind,
    message: string,
    details: NixErrorDetails = {},
  ) {
    super(message);
    this.retryable = details.retryable ?? RETRYABLE.has(kind);
    this.location = details.location;
    this.derivation = details.derivation;
    this.logTail = details.logTail;
    this.stderr = details.stderr;
  }
}
