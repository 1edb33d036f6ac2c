import type { AgentFailure, AgentOp } from './protocol';

/**
 * How a request to the guest agent failed:
 * - `unreachable`: the connection could not be opened (VMM gone, socket missing, nothing
 *   listening in the guest yet);
 * - `timeout`: no answer within the request's deadline; the connection stays open and a
 *   late answer is dropped by its id;
 * - `closed`: the connection ended with the request in flight (the VM died or was
 *   destroyed, or the client was closed);
 * - `protocol`: the bytes are not frames of this protocol; the connection is dropped;
 * - `rejected`: the agent answered with an error (`failure` says which: `bad-request`,
 *   `failed` with an errno `code`, `internal`).
 * Only `rejected` says the guest is healthy; a pool should destroy a VM after the others.
 */
export type AgentErrorKind = 'unreachable' | 'timeout' | 'closed' | 'protocol' | 'rejected';

export class AgentError extends Error {
  override readonly name = 'AgentError';

  constructor(
    readonly kind: AgentErrorKind,
    readonly op: AgentOp | 'connect',
    message: string,
    readonly failure?: AgentFailure,
    options?: { cause?: unknown },
  ) {
    super(`agent ${op}: ${message}`, options);
  }
}
