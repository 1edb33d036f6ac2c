import { isIPv4, isIPv6 } from 'node:net';
import type { INetworkPolicyPeer } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicyPeer';
import type { INetworkPolicyPort } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicyPort';
import { ModelError } from './errors';
import { shootPoolPort } from './deployment';
import {
  DEFAULT_NETWORK,
  type ClusterNetwork,
  type GenerationContext,
  type RenderOptions,
  type SeedInstance,
} from './input';
import { instanceObjectMeta } from './metadata';
import {
  flakeObjectName,
  instanceObjectName,
  LABEL_MANAGED_BY,
  MANAGED_BY_SEED,
  namespaceName,
  selectorLabels,
} from './names';
import { byName, withSortedKeys, type SeedNetworkPolicy } from './objects';
import { exposedPorts } from './ports';

/**
 * A flake's namespace is closed: nothing comes in or goes out but what these allow, all
 * of them additive, as NetworkPolicies are.
 *
 * - `seed.default-deny`: every pod of the flake, both directions, no rule.
 * - `seed.allow-dns`: egress to the cluster DNS on port 53, UDP and TCP.
 * - `seed.allow-same-flake`: the flake's pods reach each other on any port.
 * - `seed.allow-to-flakes`: egress to the pods of every flake namespace; their own
 *   policies let in only what they expose, and both ends must allow a connection.
 * - `seed.allow-internet`: egress anywhere but the pod, Service and node ranges and the
 *   link-local ones (a cloud's metadata service answers at 169.254.169.254).
 * - `<instance>`: per instance, ingress from anywhere to its exposed ports, and with
 *   shoots enabled, egress to the nodes' shoot-pool port.
 *
 * The flake's policies carry no generation or instance, so a push never rewrites them;
 * their names hold a `.`, which no instance name can, so they never clash with one.
 */
export function renderFlakeNetworkPolicies(
  context: GenerationContext,
  options: RenderOptions = {},
): SeedNetworkPolicy[] {
  const network = checkedNetwork(options.network ?? DEFAULT_NETWORK);
  const everyPod = {};
  const policy = (name: string, spec: SeedNetworkPolicy['spec']): SeedNetworkPolicy =>
    withSortedKeys({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: {
        name: flakeObjectName(name, 'NetworkPolicy'),
        namespace: namespaceName(context.namespace),
        labels: { [LABEL_MANAGED_BY]: MANAGED_BY_SEED },
      },
      spec,
    });
  return [
    policy('default-deny', { podSelector: everyPod, policyTypes: ['Ingress', 'Egress'] }),
    policy('allow-dns', {
      podSelector: everyPod,
      policyTypes: ['Egress'],
      egress: [{ to: dnsPeers(network), ports: DNS_PORTS }],
    }),
    policy('allow-same-flake', {
      podSelector: everyPod,
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [{ podSelector: everyPod }] }],
      egress: [{ to: [{ podSelector: everyPod }] }],
    }),
    policy('allow-to-flakes', {
      podSelector: everyPod,
      policyTypes: ['Egress'],
      egress: [
        { to: [{ namespaceSelector: { matchLabels: { [LABEL_MANAGED_BY]: MANAGED_BY_SEED } } }] },
      ],
    }),
    policy('allow-internet', {
      podSelector: everyPod,
      policyTypes: ['Egress'],
      egress: [{ to: internetPeers(network) }],
    }),
  ];
}

/**
 * The policy `<name>` of an instance that exposes ports or has shoots enabled, else
 * undefined: ingress from anywhere (other flakes, the nodes, outside the cluster) to the
 * ports it exposes, and egress to the shoot pool, which listens on every node's address.
 */
export function renderInstanceNetworkPolicy(
  context: GenerationContext,
  instance: SeedInstance,
  options: RenderOptions = {},
): SeedNetworkPolicy | undefined {
  const name = instanceObjectName(instance.name);
  const exposed = exposedPorts(name, instance.meta.expose);
  const shoots = instance.meta.shoot.enable;
  if (exposed.length === 0 && !shoots) return undefined;
  const network = checkedNetwork(options.network ?? DEFAULT_NETWORK);
  return withSortedKeys({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: instanceObjectMeta(context, instance, name),
    spec: {
      podSelector: { matchLabels: selectorLabels(name) },
      policyTypes: [
        ...(exposed.length > 0 ? (['Ingress'] as const) : []),
        ...(shoots ? (['Egress'] as const) : []),
      ],
      ...(exposed.length > 0 && {
        ingress: [
          { ports: exposed.map((port) => ({ port: port.port, protocol: port.transport })) },
        ],
      }),
      ...(shoots && {
        egress: [
          {
            to: network.nodeCidrs.map((cidr) => ({ ipBlock: { cidr } })),
            ports: [{ port: shootPoolPort(options), protocol: 'TCP' }],
          },
        ],
      }),
    },
  });
}

const DNS_PORTS: INetworkPolicyPort[] = [
  { port: 53, protocol: 'UDP' },
  { port: 53, protocol: 'TCP' },
];

/**
 * Never part of "the internet": link-local addresses are the node's own link (a cloud's
 * metadata service, which hands out the node's credentials, is 169.254.169.254).
 */
const LINK_LOCAL = ['169.254.0.0/16', 'fe80::/10'];

function dnsPeers(network: ClusterNetwork): INetworkPolicyPeer[] {
  const { namespace, podLabels, cidrs = [] } = network.clusterDns;
  const pods: INetworkPolicyPeer[] =
    namespace === undefined
      ? []
      : [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
            podSelector: { matchLabels: { ...podLabels } },
          },
        ];
  return [...pods, ...cidrs.map((cidr) => ({ ipBlock: { cidr } }))];
}

/** `0.0.0.0/0` and `::/0`, each less the cluster's and the link-local ranges of its family. */
function internetPeers(network: ClusterNetwork): INetworkPolicyPeer[] {
  const excluded = [
    ...new Set([...network.podCidrs, ...network.serviceCidrs, ...network.nodeCidrs, ...LINK_LOCAL]),
  ].sort(byName);
  return [
    { ipBlock: { cidr: '0.0.0.0/0', except: excluded.filter((cidr) => familyOf(cidr) === 4) } },
    { ipBlock: { cidr: '::/0', except: excluded.filter((cidr) => familyOf(cidr) === 6) } },
  ];
}

/** Every range must be one the API server takes as an `ipBlock` (and an `except` of `/0`). */
function checkedNetwork(network: ClusterNetwork): ClusterNetwork {
  const fields: [string, readonly string[]][] = [
    ['podCidrs', network.podCidrs],
    ['serviceCidrs', network.serviceCidrs],
    ['nodeCidrs', network.nodeCidrs],
    ['clusterDns.cidrs', network.clusterDns.cidrs ?? []],
  ];
  for (const [field, cidrs] of fields) {
    for (const cidr of cidrs) {
      const reason = cidrProblem(cidr);
      if (reason !== undefined) {
        throw new ModelError({ field: `options.network.${field}`, reason: `"${cidr}" ${reason}` });
      }
    }
  }
  if (network.clusterDns.namespace === undefined && (network.clusterDns.cidrs ?? []).length === 0) {
    throw new ModelError({
      field: 'options.network.clusterDns',
      reason: 'names neither a namespace nor addresses: instances could not resolve names',
    });
  }
  return network;
}

function cidrProblem(cidr: string): string | undefined {
  const parts = cidr.split('/');
  const [address = '', prefixText = ''] = parts;
  const value = isIPv4(address) ? ipv4Value(address) : ipv6Value(address);
  if (value === undefined || parts.length !== 2) return 'is not a CIDR (address/prefix)';
  const bits = isIPv4(address) ? 32 : 128;
  const prefix = Number(prefixText);
  if (!/^\d+$/.test(prefixText) || prefix < 1 || prefix > bits) {
    return `has prefix length "${prefixText}"; a range of the cluster is /1 to /${bits}`;
  }
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  if ((value & hostMask) !== 0n) return 'has host bits set: write the range by its first address';
  return undefined;
}

function familyOf(cidr: string): 4 | 6 {
  return isIPv4(cidr.split('/')[0] ?? '') ? 4 : 6;
}

function ipv4Value(address: string): bigint {
  return address.split('.').reduce((value, octet) => (value << 8n) | BigInt(octet), 0n);
}

/** The address as a number; undefined unless it is IPv6 in hex groups (no dotted tail). */
function ipv6Value(address: string): bigint | undefined {
  if (!isIPv6(address) || address.includes('.')) return undefined;
  const [head = '', tail] = address.split('::');
  const groups = (text: string) => (text === '' ? [] : text.split(':'));
  const zeros = tail === undefined ? 0 : 8 - groups(head).length - groups(tail).length;
  return [...groups(head), ...Array<string>(zeros).fill('0'), ...groups(tail ?? '')].reduce(
    (value, group) => (value << 16n) | BigInt(`0x${group}`),
    0n,
  );
}
