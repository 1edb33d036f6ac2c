// A stand-in for apps/reconciler: a real seed.v1.Reconciler gRPC server on loopback, with
// the platform's mutual TLS and caller table, that takes every generation at once, so the
// bench times the builder's side of the call only.
import * as grpc from '@grpc/grpc-js';
import { RECONCILER_CALLERS, reconcilerService, type ReconcilerHandlers } from '@seed/contracts';
import { startGrpcServer, type GrpcTransport, type RunningGrpcServer } from '@seed/service-kit';

export class StandInReconciler {
  private constructor(
    private readonly server: RunningGrpcServer,
    /** Generations applied, per flake URI, in order. */
    readonly applied: ReadonlyMap<string, readonly string[]>,
  ) {}

  static async start(transport: GrpcTransport): Promise<StandInReconciler> {
    const applied = new Map<string, string[]>();
    const handlers: ReconcilerHandlers = {
      ApplyGeneration: (call, callback) => {
        const { flakeUri, generation } = call.request;
        const generations = applied.get(flakeUri) ?? [];
        const changed = generations.at(-1) !== generation;
        applied.set(flakeUri, [...generations, generation]);
        callback(null, { changed, generation });
      },
      GetStatus: (_call, callback) =>
        callback({ code: grpc.status.UNIMPLEMENTED, details: 'bench stand-in' }),
      ListStatus: (_call, callback) =>
        callback({ code: grpc.status.UNIMPLEMENTED, details: 'bench stand-in' }),
      Rollback: (_call, callback) =>
        callback({ code: grpc.status.UNIMPLEMENTED, details: 'bench stand-in' }),
    };
    const server = await startGrpcServer(
      '127.0.0.1',
      0,
      [
        {
          name: 'seed.v1.Reconciler',
          definition: reconcilerService(),
          handlers,
          callers: RECONCILER_CALLERS,
        },
      ],
      transport,
    );
    return new StandInReconciler(server, applied);
  }

  get address(): string {
    return `127.0.0.1:${this.server.port}`;
  }

  /** How many ApplyGeneration calls it answered. */
  get calls(): number {
    return [...this.applied.values()].reduce((sum, generations) => sum + generations.length, 0);
  }

  /** Stops it, cutting off any client still connected after two seconds. */
  stop(): Promise<void> {
    return this.server.stop(2_000);
  }
}
