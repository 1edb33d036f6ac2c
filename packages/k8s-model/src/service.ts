import type { ExposeProtocol } from '@seed/contracts';
import type { GenerationContext, SeedInstance } from './input';
import { instanceObjectMeta } from './metadata';
import { instanceObjectName, selectorLabels } from './names';
import { withSortedKeys, type SeedService } from './objects';
import { exposedPorts } from './ports';

/**
 * `appProtocol` for the protocols that have one, a hint for ingress controllers and
 * meshes (an addition to ARCHITECTURE.md). gRPC inside the cluster is taken to be
 * cleartext HTTP/2, which Kubernetes names `kubernetes.io/h2c`.
 */
const APP_PROTOCOLS: Partial<Record<ExposeProtocol, string>> = {
  http: 'http',
  grpc: 'kubernetes.io/h2c',
};

/**
 * The Service `<name>` of an instance, or undefined when it exposes nothing: a ClusterIP
 * with one port per transport of each `seed.expose` entry, port == targetPort, so
 * `<name>:<port>` inside the namespace reaches the instance as it declared it.
 */
export function renderService(
  context: GenerationContext,
  instance: SeedInstance,
): SeedService | undefined {
  const name = instanceObjectName(instance.name);
  const ports = exposedPorts(name, instance.meta.expose);
  if (ports.length === 0) return undefined;
  return withSortedKeys({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: instanceObjectMeta(context, instance, name),
    spec: {
      type: 'ClusterIP',
      selector: selectorLabels(name),
      ports: ports.map((port) => {
        const appProtocol = APP_PROTOCOLS[port.protocol];
        return {
          name: port.name,
          port: port.port,
          targetPort: port.port,
          protocol: port.transport,
          ...(appProtocol !== undefined && { appProtocol }),
        };
      }),
    },
  });
}
