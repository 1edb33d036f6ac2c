import { describe, expect, it } from '@jest/globals';
import {
  DEFAULT_NETWORK,
  renderFlakeNetworkPolicies,
  renderGeneration,
  renderInstanceNetworkPolicy,
  type ClusterNetwork,
} from '../src';
import { everything, generation, instance } from './fixtures';
import { modelErrorOf, objectOf, objectsOf } from './helpers';

const context = generation([]);

/** The local node's network: one bridge whose gateway is the node and its DNS server. */
const localNode: ClusterNetwork = {
  podCidrs: ['10.244.0.0/24'],
  serviceCidrs: ['10.0.0.0/24'],
  nodeCidrs: ['10.244.0.1/32'],
  clusterDns: { cidrs: ['10.244.0.1/32'] },
};

function flakePolicy(name: string, network?: ClusterNetwork) {
  const policies = renderFlakeNetworkPolicies(context, network && { network });
  return objectOf(policies, 'NetworkPolicy', name);
}

describe("a flake's own NetworkPolicies", () => {
  it('deny everything in and out of every pod, with no rule', () => {
    expect(flakePolicy('seed.default-deny').spec).toEqual({
      podSelector: {},
      policyTypes: ['Ingress', 'Egress'],
    });
  });

  it("let the flake's pods reach each other, and nothing outside the namespace in", () => {
    expect(flakePolicy('seed.allow-same-flake').spec).toEqual({
      podSelector: {},
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [{ podSelector: {} }] }],
      egress: [{ to: [{ podSelector: {} }] }],
    });
  });

  it("allow DNS to the cluster DNS's pods, on port 53 over UDP and TCP only", () => {
    expect(flakePolicy('seed.allow-dns').spec).toEqual({
      podSelector: {},
      policyTypes: ['Egress'],
      egress: [
        {
          to: [
            {
              namespaceSelector: {
                matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' },
              },
              podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
            },
          ],
          ports: [
            { port: 53, protocol: 'UDP' },
            { port: 53, protocol: 'TCP' },
          ],
        },
      ],
    });
  });

  it("let the flake's pods out to other flakes' pods, whose own policies admit only what they expose", () => {
    expect(flakePolicy('seed.allow-to-flakes').spec).toEqual({
      podSelector: {},
      policyTypes: ['Egress'],
      egress: [
        { to: [{ namespaceSelector: { matchLabels: { 'seed.loom.farm/managed-by': 'seed' } } }] },
      ],
    });
  });

  it('allow DNS to addresses when the cluster DNS is not a pod (the local node)', () => {
    expect(flakePolicy('seed.allow-dns', localNode).spec?.egress?.[0]?.to).toEqual([
      { ipBlock: { cidr: '10.244.0.1/32' } },
    ]);
  });

  it('allow the internet, less the pod, Service, node and link-local ranges', () => {
    expect(flakePolicy('seed.allow-internet', localNode).spec).toEqual({
      podSelector: {},
      policyTypes: ['Egress'],
      egress: [
        {
          to: [
            {
              ipBlock: {
                cidr: '0.0.0.0/0',
                except: ['10.0.0.0/24', '10.244.0.0/24', '10.244.0.1/32', '169.254.0.0/16'],
              },
            },
            { ipBlock: { cidr: '::/0', except: ['fe80::/10'] } },
          ],
        },
      ],
    });
  });

  it('keep every private range out of the internet when nodes are not configured', () => {
    const [v4, v6] = flakePolicy('seed.allow-internet').spec?.egress?.[0]?.to ?? [];
    expect(v4?.ipBlock?.except).toEqual([
      '10.0.0.0/8',
      '10.42.0.0/16',
      '10.43.0.0/16',
      '169.254.0.0/16',
      '172.16.0.0/12',
      '192.168.0.0/16',
    ]);
    expect(v6?.ipBlock?.except).toEqual(['fc00::/7', 'fe80::/10']);
  });

  it('carry only Seed’s label: nothing a push changes, so a push never rewrites them', () => {
    const policies = renderFlakeNetworkPolicies(context);
    const again = renderFlakeNetworkPolicies(
      generation([], { generation: 'ba9876543210', commit: 'f'.repeat(40) }),
    );
    expect(again).toEqual(policies);
    for (const policy of policies) {
      expect(policy.metadata).toEqual({
        name: policy.metadata.name,
        namespace: 's-abcdefghijkl',
        labels: { 'seed.loom.farm/managed-by': 'seed' },
      });
    }
  });
});

describe("an instance's NetworkPolicy", () => {
  it('lets anyone in to its exposed ports, each on its transport, and nowhere else', () => {
    const resolver = instance('resolver', {
      expose: { dns: { port: 53, protocol: 'dns' }, web: { port: 8080, protocol: 'http' } },
    });
    const policy = renderInstanceNetworkPolicy(context, resolver);
    expect(policy?.metadata.name).toBe('resolver');
    expect(policy?.spec).toEqual({
      podSelector: {
        matchLabels: {
          'seed.loom.farm/instance': 'resolver',
          'seed.loom.farm/managed-by': 'seed',
        },
      },
      policyTypes: ['Ingress'],
      ingress: [
        {
          ports: [
            { port: 53, protocol: 'TCP' },
            { port: 53, protocol: 'UDP' },
            { port: 8080, protocol: 'TCP' },
          ],
        },
      ],
    });
  });

  it("lets an instance with shoots out to the shoot pool's port on the nodes only", () => {
    const shooter = instance('shooter', { shoot: { enable: true } });
    const policy = renderInstanceNetworkPolicy(context, shooter, {
      shootPoolPort: 7171,
      network: localNode,
    });
    expect(policy?.spec).toEqual({
      podSelector: {
        matchLabels: { 'seed.loom.farm/instance': 'shooter', 'seed.loom.farm/managed-by': 'seed' },
      },
      policyTypes: ['Egress'],
      egress: [
        { to: [{ ipBlock: { cidr: '10.244.0.1/32' } }], ports: [{ port: 7171, protocol: 'TCP' }] },
      ],
    });
  });

  it('is not rendered for an instance that exposes nothing and has no shoots', () => {
    expect(renderInstanceNetworkPolicy(context, instance('worker'))).toBeUndefined();
  });

  it('belongs to its instance, as its Deployment does', () => {
    const objects = renderGeneration(generation(everything));
    const policy = objectOf(objects, 'NetworkPolicy', 'web');
    expect(policy.metadata.labels).toEqual(objectOf(objects, 'Deployment', 'web').metadata.labels);
    expect(objectsOf(objects, 'NetworkPolicy').map((p) => p.metadata.name)).not.toContain('worker');
  });
});

describe('the cluster network is refused, before rendering anything, when', () => {
  it.each<[string, ClusterNetwork, string, string]>([
    [
      'a range is no CIDR',
      { ...DEFAULT_NETWORK, podCidrs: ['10.42.0.0'] },
      'options.network.podCidrs',
      '"10.42.0.0" is not a CIDR (address/prefix)',
    ],
    [
      'a range has host bits set',
      { ...DEFAULT_NETWORK, nodeCidrs: ['10.244.0.1/24'] },
      'options.network.nodeCidrs',
      '"10.244.0.1/24" has host bits set: write the range by its first address',
    ],
    [
      'a range is everything (it cannot be cut out of the internet)',
      { ...DEFAULT_NETWORK, serviceCidrs: ['::/0'] },
      'options.network.serviceCidrs',
      '"::/0" has prefix length "0"; a range of the cluster is /1 to /128',
    ],
    [
      'an IPv6 range has host bits set',
      { ...DEFAULT_NETWORK, podCidrs: ['fd00::1/64'] },
      'options.network.podCidrs',
      '"fd00::1/64" has host bits set: write the range by its first address',
    ],
    [
      'the cluster DNS is nowhere',
      { ...DEFAULT_NETWORK, clusterDns: {} },
      'options.network.clusterDns',
      'names neither a namespace nor addresses: instances could not resolve names',
    ],
  ])('%s', (_case, network, field, reason) => {
    expect(modelErrorOf(() => renderGeneration(generation(everything), { network }))).toEqual({
      instance: undefined,
      field,
      reason,
    });
  });

  it('takes IPv6 ranges written short or long', () => {
    const network = { ...DEFAULT_NETWORK, podCidrs: ['fd00:0:0:1::/64', '2001:db8::/32'] };
    expect(() => renderFlakeNetworkPolicies(context, { network })).not.toThrow();
  });
});
