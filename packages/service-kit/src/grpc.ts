import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';

export interface GrpcService {
  /** Full service name, e.g. `seed.v1.Reconciler`, as the health protocol reports it. */
  name: string;
  definition: grpc.ServiceDefinition;
  handlers: grpc.UntypedServiceImplementation;
}

export interface RunningGrpcServer {
  port: number;
  /** Reports NOT_SERVING for every service (on the way down), then stops the server. */
  stop(graceMs: number): Promise<void>;
}

/**
 * A gRPC server with the standard health-checking service (`grpc.health.v1.Health`)
 * reporting SERVING for the whole server and each service, on host:port (0: any free port).
 */
export async function startGrpcServer(
  host: string,
  port: number,
  services: GrpcService[],
): Promise<RunningGrpcServer> {
  const server = new grpc.Server();
  const statuses: Record<string, 'SERVING'> = { '': 'SERVING' };
  for (const service of services) {
    server.addService(service.definition, service.handlers);
    statuses[service.name] = 'SERVING';
  }
  const health = new HealthImplementation(statuses);
  health.addToServer(server);
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (error, actual) =>
      error ? reject(error) : resolve(actual),
    ),
  );
  return {
    port: bound,
    stop: async (graceMs) => {
      for (const name of Object.keys(statuses)) health.setStatus(name, 'NOT_SERVING');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
