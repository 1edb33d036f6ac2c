// A stand-in for apps/reconciler: a real seed.v1.Reconciler gRPC server on loopback that
// takes every generation at once, so the bench times the builder's side of the call only.
import * as grpc from '@grpc/grpc-js';
import { reconcilerService, type ReconcilerHandlers } from '@seed/contracts';

export class StandInReconciler {
  private constructor(
    private readonly server: grpc.Server,
    readonly port: number,
    /** Generations applied, per flake URI, in order. */
    readonly applied: ReadonlyMap<string, readonly string[]>,
  ) {}

  static async start(): Promise<StandInReconciler> {
    const server = new grpc.Server();
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
    };
    server.addService(reconcilerService(), handlers);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    return new StandInReconciler(server, port, applied);
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** How many ApplyGeneration calls it answered. */
  get calls(): number {
    return [...this.applied.values()].reduce((sum, generations) => sum + generations.length, 0);
  }

  /** Stops it, cutting off any client still connected after two seconds. */
  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 2_000);
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}
