import { describe, expect, it } from '@jest/globals';
import type { SeedMeta } from '@seed/contracts';
import { renderService } from '../src';
import { generation, instance } from './fixtures';

const context = generation([]);
const serviceOf = (expose: SeedMeta['expose']) =>
  renderService(context, instance('web', { expose }));

describe('renderService', () => {
  it('renders nothing when nothing is exposed', () => {
    expect(serviceOf({})).toBeUndefined();
  });

  it('is a ClusterIP named after the instance, selecting its pods', () => {
    const service = serviceOf({ http: { port: 8080, protocol: 'http' } });
    expect(service?.metadata).toEqual({
      name: 'web',
      namespace: 's-abcdefghijkl',
      labels: {
        'seed.loom.farm/managed-by': 'seed',
        'seed.loom.farm/instance': 'web',
      },
      annotations: {
        'seed.loom.farm/instance-hash': expect.stringMatching(/^[0-9a-f]{12}$/),
      },
    });
    expect(service?.spec?.type).toBe('ClusterIP');
    expect(service?.spec?.selector).toEqual({
      'seed.loom.farm/managed-by': 'seed',
      'seed.loom.farm/instance': 'web',
    });
  });

  it.each<[string, SeedMeta['expose'], object[]]>([
    [
      'http, with appProtocol http',
      { http: { port: 8080, protocol: 'http' } },
      [{ name: 'http', port: 8080, targetPort: 8080, protocol: 'TCP', appProtocol: 'http' }],
    ],
    [
      'grpc, with appProtocol kubernetes.io/h2c',
      { api: { port: 9090, protocol: 'grpc' } },
      [
        {
          name: 'api',
          port: 9090,
          targetPort: 9090,
          protocol: 'TCP',
          appProtocol: 'kubernetes.io/h2c',
        },
      ],
    ],
    [
      'tcp',
      { ssh: { port: 22, protocol: 'tcp' } },
      [{ name: 'ssh', port: 22, targetPort: 22, protocol: 'TCP' }],
    ],
    [
      'udp',
      { game: { port: 27015, protocol: 'udp' } },
      [{ name: 'game', port: 27015, targetPort: 27015, protocol: 'UDP' }],
    ],
    [
      'dns as <key>-tcp and <key>-udp',
      { dns: { port: 53, protocol: 'dns' } },
      [
        { name: 'dns-tcp', port: 53, targetPort: 53, protocol: 'TCP' },
        { name: 'dns-udp', port: 53, targetPort: 53, protocol: 'UDP' },
      ],
    ],
    [
      'several entries, by key',
      { web: { port: 80, protocol: 'http' }, a: { port: 53, protocol: 'dns' } },
      [
        { name: 'a-tcp', port: 53, targetPort: 53, protocol: 'TCP' },
        { name: 'a-udp', port: 53, targetPort: 53, protocol: 'UDP' },
        { name: 'web', port: 80, targetPort: 80, protocol: 'TCP', appProtocol: 'http' },
      ],
    ],
  ])('exposes %s', (_what, expose, ports) => {
    expect(serviceOf(expose)?.spec?.ports).toEqual(ports);
  });
});
