import { transportsOf, type ExposeProtocol, type SeedMeta } from '@seed/contracts';
import { ModelError } from './errors';
import { exposePortName } from './names';
import { sortedEntries } from './objects';

/** One port an instance serves, on one transport: a `dns` entry gives two. */
export interface ExposedPort {
  /** The `seed.expose.<key>` it comes from. */
  key: string;
  /** Its container and Service port name. */
  name: string;
  port: number;
  transport: 'TCP' | 'UDP';
  protocol: ExposeProtocol;
}

/**
 * The ports of `seed.expose`, by key, TCP before UDP. Port names must be unique in a pod
 * and a Service; the meta schema cannot see that `a` (dns → `a-tcp`) and `a-tcp` clash.
 */
export function exposedPorts(instance: string, expose: SeedMeta['expose']): ExposedPort[] {
  const ports: ExposedPort[] = [];
  const keyByName = new Map<string, string>();
  for (const [key, entry] of sortedEntries(expose)) {
    for (const transport of transportsOf(entry.protocol)) {
      const name = exposePortName(instance, key, entry.protocol, transport);
      const owner = keyByName.get(name);
      if (owner !== undefined) {
        throw new ModelError({
          instance,
          field: `meta.expose.${key}`,
          reason: `port name "${name}" is already the name of meta.expose.${owner}`,
        });
      }
      keyByName.set(name, key);
      ports.push({ key, name, port: entry.port, transport, protocol: entry.protocol });
    }
  }
  return ports;
}

/**
 * The port a rolling update's readiness probe dials: the first exposed port (by key) that
 * is served over TCP, `dns` included. Undefined when everything is UDP or nothing is
 * exposed; the pod then counts as ready once it runs.
 */
export function readinessPort(ports: readonly ExposedPort[]): ExposedPort | undefined {
  return ports.find((port) => port.transport === 'TCP');
}
