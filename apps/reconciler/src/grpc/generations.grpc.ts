import * as grpc from '@grpc/grpc-js';
import type { ReconcilerHandlers } from '@seed/contracts';
import { GenerationError, type GenerationsService } from '../generations.service';

const STATUS: Record<GenerationError['kind'], grpc.status> = {
  invalid: grpc.status.INVALID_ARGUMENT,
  'not-found': grpc.status.NOT_FOUND,
  failed: grpc.status.FAILED_PRECONDITION,
  foreign: grpc.status.FAILED_PRECONDITION,
  unavailable: grpc.status.UNAVAILABLE,
};

function toStatus(error: unknown): grpc.StatusObject {
  if (error instanceof GenerationError) {
    return { code: STATUS[error.kind], details: error.message, metadata: new grpc.Metadata() };
  }
  return {
    code: grpc.status.INTERNAL,
    details: (error as Error).message,
    metadata: new grpc.Metadata(),
  };
}

/** The `seed.v1.Reconciler` handlers: parse, call the service, map errors to gRPC statuses. */
export function generationsHandlers(service: GenerationsService): ReconcilerHandlers {
  return {
    ApplyGeneration: (call, callback) => {
      service.apply(call.request).then(
        (result) => callback(null, result),
        (error: unknown) => callback(toStatus(error)),
      );
    },
    GetStatus: (call, callback) => {
      service.status(call.request.flakeUri).then(
        (status) => callback(null, status),
        (error: unknown) => callback(toStatus(error)),
      );
    },
    Rollback: (call, callback) => {
      service.rollback(call.request.flakeUri, call.request.to).then(
        (result) => callback(null, result),
        (error: unknown) => callback(toStatus(error)),
      );
    },
    ListStatus: (_call, callback) => {
      service.list().then(
        (flakes) => callback(null, { flakes }),
        (error: unknown) => callback(toStatus(error)),
      );
    },
  };
}
