import * as grpc from '@grpc/grpc-js';
import { peerIdentity, watchTlsDirectory, type TlsDirectory } from '@seed/contracts';
import { HealthImplementation } from 'grpc-health-check';

export interface GrpcService {
  /** Full service name, e.g. `seed.v1.Reconciler`, as the health protocol reports it. */
  name: string;
  definition: grpc.ServiceDefinition;
  handlers: grpc.UntypedServiceImplementation;
  /**
   * With mutual TLS: the client identities (certificate CNs) allowed to call each method,
   * by method name. Every method must be listed.
   */
  callers?: Record<string, readonly string[]>;
}

/**
 * How the server is reached: mutual TLS with the platform CA (the calls authorised by
 * client identity), or plaintext for a service whose calls authenticate themselves.
 */
export type GrpcTransport =
  { kind: 'mtls'; tls: TlsDirectory; reloadMs: number } | { kind: 'plaintext' };

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
  transport: GrpcTransport,
): Promise<RunningGrpcServer> {
  const server = new grpc.Server(
    transport.kind === 'mtls' ? { interceptors: [authorizeCallers(services)] } : {},
  );
  const statuses: Record<string, 'SERVING'> = { '': 'SERVING' };
  for (const service of services) {
    server.addService(service.definition, service.handlers);
    statuses[service.name] = 'SERVING';
  }
  const health = new HealthImplementation(statuses);
  health.addToServer(server);
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, serverCredentials(transport), (error, actual) =>
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

function serverCredentials(transport: GrpcTransport): grpc.ServerCredentials {
  if (transport.kind === 'plaintext') return grpc.ServerCredentials.createInsecure();
  const files = watchTlsDirectory(transport.tls, transport.reloadMs);
  // A client certificate is asked for but not required by TLS itself: a connection
  // without one (or with one from another CA) still gets a gRPC answer,
  // UNAUTHENTICATED with a reason, instead of a bare handshake failure; the health
  // service stays open to it.
  return grpc.experimental.createCertificateProviderServerCredentials(files, files, false);
}

/**
 * Checks each call's client identity against its service's callers before the handler
 * runs. Methods of services without a callers table (the health service) are open to any
 * TLS client.
 */
function authorizeCallers(services: GrpcService[]): grpc.ServerInterceptor {
  const callers = new Map<string, readonly string[]>();
  for (const service of services) {
    for (const [method, definition] of Object.entries(service.definition)) {
      const allowed = service.callers?.[method];
      if (allowed === undefined) {
        throw new Error(`${service.name}/${method} has no callers: say who may call it`);
      }
      callers.set(definition.path, allowed);
    }
  }
  return (method, call) =>
    new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, pass) => {
            const allowed = callers.get(method.path);
            if (allowed === undefined) return pass(metadata);
            const identity = peerIdentity(call);
            if (identity === undefined) {
              return call.sendStatus({
                code: grpc.status.UNAUTHENTICATED,
                details: `${method.path} needs a client certificate issued by the platform CA`,
                metadata: new grpc.Metadata(),
              });
            }
            if (!allowed.includes(identity)) {
              return call.sendStatus({
                code: grpc.status.PERMISSION_DENIED,
                details: `identity "${identity}" may not call ${method.path} (allowed: ${allowed.join(', ')})`,
                metadata: new grpc.Metadata(),
              });
            }
            pass(metadata);
          },
        }),
    });
}
