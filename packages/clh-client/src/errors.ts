import type { ClhEndpoint } from './endpoints';

/**
 * How a call to Cloud Hypervisor failed, so callers can decide without parsing text:
 * `unreachable` and `timeout` say nothing about the VM (the VMM may be gone or stuck),
 * `rejected` is CH's own answer, `protocol` means CH answered something this client
 * cannot read, which points at a version mismatch or a broken VMM.
 */
export type ClhErrorKind =
  | 'unreachable' // the socket is missing, refuses connections, or cannot be opened
  | 'timeout' // no complete reply within the deadline
  | 'rejected' // CH answered 4xx/5xx, or (vsock) refused the CONNECT
  | 'protocol'; // a reply that is not what the API or the handshake promises

/** What was being done: an API endpoint, or the hybrid-vsock handshake. */
export type ClhOperation = ClhEndpoint | 'vsock.connect';

export interface ClhErrorDetails {
  /** The HTTP status CH answered with, for `rejected` API calls. */
  status?: number;
  /** CH's own error text, for `rejected` API calls. */
  detail?: string;
  cause?: unknown;
}

export class ClhError extends Error {
  override readonly name = 'ClhError';
  readonly status?: number;
  readonly detail?: string;

  constructor(
    readonly kind: ClhErrorKind,
    readonly operation: ClhOperation,
    message: string,
    details: ClhErrorDetails = {},
  ) {
    super(`${operation}: ${message}`, details.cause === undefined ? {} : { cause: details.cause });
    this.status = details.status;
    this.detail = details.detail;
  }
}
