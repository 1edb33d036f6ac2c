import * as grpc from '@grpc/grpc-js';
import type { ShootHandlers } from '@seed/contracts';
import { bearerToken, type TokenFile } from '@seed/service-kit';
import { CallerLookupFailed, CallerRejected, type CallerRejection } from '../caller/caller';
import { PoolFull, PoolUnavailable } from '../pool/pool';
import { ShootInvalid, ShootVmFailed, parseGrpcShoot, type ShootService } from '../shoot.service';

const CALLER_CODE: Record<CallerRejection, grpc.status> = {
  unauthenticated: grpc.status.UNAUTHENTICATED,
  forbidden: grpc.status.PERMISSION_DENIED,
  unresolvable: grpc.status.FAILED_PRECONDITION,
};

function toStatus(error: unknown): Partial<grpc.StatusObject> {
  const details = error instanceof Error ? error.message : String(error);
  let code = grpc.status.INTERNAL;
  if (error instanceof ShootInvalid) code = grpc.status.INVALID_ARGUMENT;
  else if (error instanceof CallerRejected) code = CALLER_CODE[error.reason];
  else if (error instanceof PoolFull) code = grpc.status.RESOURCE_EXHAUSTED;
  else if (error instanceof PoolUnavailable || error instanceof CallerLookupFailed)
    code = grpc.status.UNAVAILABLE;
  else if (error instanceof ShootVmFailed) code = grpc.status.ABORTED;
  return { code, details, metadata: new grpc.Metadata() };
}

/** The caller's IP from a gRPC peer: `ipv4:1.2.3.4:5`, `1.2.3.4:5`, `[::1]:5`, `ipv6:[::1]:5`. */
export function peerIp(peer: string): string {
  const address = peer.replace(/^ipv[46]:/, '');
  const bracketed = /^\[([^\]]+)\]:\d+$/.exec(address);
  if (bracketed) return bracketed[1]!;
  const ipv4 = /^([^:]+):\d+$/.exec(address);
  return ipv4 ? ipv4[1]! : address;
}

/**
 * The `seed.v1.Shoot` handlers: the caller's claim from the peer address and the
 * `authorization` metadata, the same service as HTTP.
 */
export function shootHandlers(service: ShootService, statusToken: TokenFile): ShootHandlers {
  // grpc-js serializes and writes the answer in the callback. It tells nothing of when a
  // call arrived, so gRPC shoots have no `receive` phase.
  const answered = (send: () => void) => void service.answer(send);
  return {
    Run: (call, callback) => {
      service
        .run(
          {
            ip: peerIp(call.getPeer()),
            token: bearerToken(String(call.metadata.get('authorization')[0] ?? '')),
          },
          () => parseGrpcShoot(call.request, service.limits),
        )
        .then(
          (outcome) =>
            answered(() =>
              callback(null, {
                exitCode: outcome.exitCode,
                stdout: outcome.stdout,
                stderr: outcome.stderr,
                durationMs: outcome.durationMs,
                timedOut: outcome.timedOut,
                stdoutTruncated: outcome.stdoutTruncated,
                stderrTruncated: outcome.stderrTruncated,
              }),
            ),
          (error: unknown) => answered(() => callback(toStatus(error))),
        );
    },
    Status: (call, callback) => {
      const token = bearerToken(String(call.metadata.get('authorization')[0] ?? ''));
      if (token === undefined || !statusToken.matches(token)) {
        callback({
          code: grpc.status.UNAUTHENTICATED,
          details:
            "the pool's status needs authorization: Bearer <SEED_SHOOT_STATUS_TOKEN_FILE's token>",
          metadata: new grpc.Metadata(),
        });
        return;
      }
      const { idle, busy, queued, capacity } = service.status();
      callback(null, { idle, busy, queued, capacity });
    },
  };
}
