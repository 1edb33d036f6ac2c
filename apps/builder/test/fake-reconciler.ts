// A stand-in for apps/reconciler: a real gRPC server on loopback that implements
// seed.v1.Reconciler from the shared .proto, behind the same mutual TLS and caller table
// as the real one, and records what it is sent.
import * as grpc from '@grpc/grpc-js';
import {
  RECONCILER_CALLERS,
  readTlsDirectory,
  reconcilerService,
  type ApplyGenerationRequest__Output,
  type ReconcilerHandlers,
} from '@seed/contracts';
import { startGrpcServer, type RunningGrpcServer } from '@seed/service-kit';
import { builderCredentials } from './harness';

export class FakeReconciler {
  readonly applied: ApplyGenerationRequest__Output[] = [];
  /** While true, ApplyGeneration calls are taken and never answered. */
  hang = false;
  private server: RunningGrpcServer | undefined;
  private current = new Map<string, string>();
  /** The revision applied last, by flake: what GetStatus answers. */
  private revisions = new Map<string, string>();

  private constructor(public port: number) {}

  static async start(port = 0): Promise<FakeReconciler> {
    const fake = new FakeReconciler(port);
    await fake.listen();
    return fake;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Revisions applied for a flake, in order. */
  revisionsOf(flake: string): string[] {
    return this.applied
      .filter((request) => request.flakeUri === flake)
      .map((request) => request.revision);
  }

  /** Generations applied for a flake, in order. */
  generationsOf(flake: string): string[] {
    return this.applied
      .filter((request) => request.flakeUri === flake)
      .map((request) => request.generation);
  }

  async listen(): Promise<void> {
    const handlers: ReconcilerHandlers = {
      ApplyGeneration: (call, callback) => {
        if (this.hang) return;
        this.applied.push(call.request);
        const changed = this.current.get(call.request.flakeUri) !== call.request.generation;
        this.current.set(call.request.flakeUri, call.request.generation);
        this.revisions.set(call.request.flakeUri, call.request.revision);
        callback(null, { changed, generation: call.request.generation });
      },
      // As the real one answers it, reduced to what the builder reads: the revision.
      GetStatus: (call, callback) => {
        const { flakeUri } = call.request;
        const revision = this.revisions.get(flakeUri);
        if (revision === undefined)
          return callback({ code: grpc.status.NOT_FOUND, details: `never applied: ${flakeUri}` });
        callback(null, {
          flakeUri,
          namespace: '',
          generation: this.current.get(flakeUri) ?? '',
          revision,
          instances: [],
          lastError: '',
          appliedAt: '',
        });
      },
      ListStatus: (_call, callback) =>
        callback({ code: grpc.status.UNIMPLEMENTED, details: 'fake' }),
      Rollback: (_call, callback) => callback({ code: grpc.status.UNIMPLEMENTED, details: 'fake' }),
    };
    const { certificates } = await builderCredentials();
    this.server = await startGrpcServer(
      '127.0.0.1',
      this.port,
      [
        {
          name: 'seed.v1.Reconciler',
          definition: reconcilerService(),
          handlers,
          callers: RECONCILER_CALLERS,
        },
      ],
      { kind: 'mtls', tls: readTlsDirectory(certificates.reconciler), reloadMs: 60_000 },
    );
    this.port = this.server.port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await server?.stop(5_000);
  }
}
