// A stand-in for apps/reconciler until it lands: a real gRPC server on loopback that
// implements seed.v1.Reconciler from the shared .proto and records what it is sent.
import * as grpc from '@grpc/grpc-js';
import {
  reconcilerService,
  type ApplyGenerationRequest__Output,
  type ReconcilerHandlers,
} from '@seed/contracts';

export class FakeReconciler {
  readonly applied: ApplyGenerationRequest__Output[] = [];
  /** While true, ApplyGeneration calls are taken and never answered. */
  hang = false;
  private server: grpc.Server | undefined;
  private current = new Map<string, string>();

  private constructor(public port: number) {}

  static async start(port = 0): Promise<FakeReconciler> {
    const fake = new FakeReconciler(port);
    await fake.listen();
    return fake;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Generations applied for a flake, in order. */
  generationsOf(flake: string): string[] {
    return this.applied
      .filter((request) => request.flakeUri === flake)
      .map((request) => request.generation);
  }

  async listen(): Promise<void> {
    const server = new grpc.Server();
    const handlers: ReconcilerHandlers = {
      ApplyGeneration: (call, callback) => {
        if (this.hang) return;
        this.applied.push(call.request);
        const changed = this.current.get(call.request.flakeUri) !== call.request.generation;
        this.current.set(call.request.flakeUri, call.request.generation);
        callback(null, { changed, generation: call.request.generation });
      },
      GetStatus: (_call, callback) =>
        callback({ code: grpc.status.UNIMPLEMENTED, details: 'fake' }),
      ListStatus: (_call, callback) =>
        callback({ code: grpc.status.UNIMPLEMENTED, details: 'fake' }),
    };
    server.addService(reconcilerService(), handlers);
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(
        `127.0.0.1:${this.port}`,
        grpc.ServerCredentials.createInsecure(),
        (error, port) => (error ? reject(error) : resolve(port)),
      ),
    );
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  }
}
