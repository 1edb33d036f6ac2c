// The configuration files of a local node's parts: pure functions of the node's layout.
import path from 'node:path';

/**
 * The node's network. There is no dummy interface in this kernel, so the CNI bridge is
 * made first and its gateway address is the node's IP: the kubelet serves there, cluster
 * DNS answers there and pods reach the host there. Pods get a route to the Service range
 * and nothing else, and nothing is masqueraded: they have no way off the machine.
 */
export const NODE_NETWORK = {
  bridge: 'seedbr0',
  nodeIp: '10.244.0.1',
  podCidr: '10.244.0.0/24',
  prefixLength: 24,
  clusterDomain: 'cluster.local',
} as const;

export const NODE_NAME = 'seed-node';

/** containerd's CRI runtime for the `kata` RuntimeClass: runc here (see docs/local-node.md). */
export const KATA_HANDLER = 'kata';
/** Where the kubelet answers `/healthz` (on 127.0.0.1). */
export const KUBELET_HEALTHZ_PORT = 10248;

/** The sandbox image, built locally (no registry) and pinned so it is never pulled. */
export const PAUSE_IMAGE = 'seed.invalid/pause:local';

export interface NodeLayout {
  /** The node's folder; everything the node writes lives under it. */
  dir: string;
  binDir: string;
  serviceClusterIpRange: string;
}

export const paths = (layout: NodeLayout) => {
  const at = (...parts: string[]): string => path.join(layout.dir, ...parts);
  return {
    containerdConfig: at('containerd.toml'),
    containerdRoot: at('containerd', 'root'),
    containerdState: at('containerd', 'state'),
    containerdSocket: at('containerd.sock'),
    // nix-snapshotter must keep its state under containerd's root, or the kubelet's
    // eviction manager cannot find the image filesystem.
    snapshotterRoot: at('containerd', 'root', 'io.containerd.snapshotter.v1.nix'),
    snapshotterConfig: at('nix-snapshotter.toml'),
    snapshotterSocket: at('nix-snapshotter.sock'),
    cniConfDir: at('cni', 'net.d'),
    cniIpamDir: at('cni', 'ipam'),
    kubeletRoot: at('kubelet'),
    kubeletConfig: at('kubelet.yaml'),
    podLogs: at('pods'),
    corefile: at('Corefile'),
  };
};

export function containerdConfig(layout: NodeLayout): string {
  const p = paths(layout);
  const runtime = `runtime_type = 'io.containerd.runc.v2'\n      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.RUNTIME.options]\n        SystemdCgroup = false`;
  return `version = 3
root = '${p.containerdRoot}'
state = '${p.containerdState}'

[grpc]
  address = '${p.containerdSocket}'

[ttrpc]
  address = '${p.containerdSocket}.ttrpc'

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'nix'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '${PAUSE_IMAGE}'

[plugins.'io.containerd.cri.v1.runtime']
  # Root here lacks CAP_SYS_RESOURCE: runc cannot lower the sandbox's oom_score_adj.
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      ${runtime.replace('RUNTIME', 'runc')}
    # No usable KVM here: the kata RuntimeClass runs its pods with runc on this node.
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.${KATA_HANDLER}]
      ${runtime.replace('RUNTIME', KATA_HANDLER)}
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['/usr/lib/cni']
    conf_dir = '${p.cniConfDir}'

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
  stream_server_port = '0'

[plugins.'io.containerd.transfer.v1.local']
  [[plugins.'io.containerd.transfer.v1.local'.unpack_config]]
    platform = 'linux/amd64'
    snapshotter = 'nix'

[proxy_plugins.nix]
  type = 'snapshot'
  address = '${p.snapshotterSocket}'
`;
}

export function snapshotterConfig(layout: NodeLayout): string {
  const p = paths(layout);
  return `address = '${p.snapshotterSocket}'
root = '${p.snapshotterRoot}'

[image_service]
  enable = true
  containerd_address = '${p.containerdSocket}'
`;
}

export function cniConfig(layout: NodeLayout): string {
  const p = paths(layout);
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: 'seed',
      plugins: [
        {
          type: 'bridge',
          bridge: NODE_NETWORK.bridge,
          isGateway: true,
          isDefaultGateway: false,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            ranges: [[{ subnet: NODE_NETWORK.podCidr, gateway: NODE_NETWORK.nodeIp }]],
            routes: [{ dst: layout.serviceClusterIpRange }],
            dataDir: p.cniIpamDir,
          },
        },
      ],
    },
    null,
    2,
  );
}

export interface KubeletCredentials {
  caPath: string;
  servingCertPath: string;
  servingKeyPath: string;
}

export function kubeletConfig(layout: NodeLayout, credentials: KubeletCredentials): string {
  const p = paths(layout);
  // JSON is YAML: no YAML library for one file.
  return JSON.stringify(
    {
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      // These machines run cgroup v1 without systemd.
      failCgroupV1: false,
      cgroupDriver: 'cgroupfs',
      failSwapOn: false,
      address: NODE_NETWORK.nodeIp,
      port: 10250,
      readOnlyPort: 0,
      healthzBindAddress: '127.0.0.1',
      healthzPort: KUBELET_HEALTHZ_PORT,
      authentication: {
        anonymous: { enabled: false },
        webhook: { enabled: true },
        x509: { clientCAFile: credentials.caPath },
      },
      authorization: { mode: 'Webhook' },
      tlsCertFile: credentials.servingCertPath,
      tlsPrivateKeyFile: credentials.servingKeyPath,
      clusterDNS: [NODE_NETWORK.nodeIp],
      clusterDomain: NODE_NETWORK.clusterDomain,
      // Pods resolve cluster names only: there is nothing outside to ask.
      resolvConf: '',
      containerRuntimeEndpoint: `unix://${p.containerdSocket}`,
      // nix-snapshotter's image service turns `nix:0/nix/store/…` into a local import.
      imageServiceEndpoint: `unix://${p.snapshotterSocket}`,
      podLogsDir: p.podLogs,
      serializeImagePulls: false,
      // A shared development machine: never evict or collect images because the disk or
      // memory is fuller than a dedicated node's would be.
      evictionHard: {
        'memory.available': '1Mi',
        'nodefs.available': '1%',
        'nodefs.inodesFree': '1%',
        'imagefs.available': '1%',
      },
      imageGCHighThresholdPercent: 100,
      imageGCLowThresholdPercent: 99,
      // Fast feedback for tests and `seed up`: a replaced pod's status reaches the API
      // within a second or two.
      syncFrequency: '10s',
      fileCheckFrequency: '20s',
      nodeStatusUpdateFrequency: '4s',
      shutdownGracePeriod: '0s',
    },
    null,
    2,
  );
}

export function corefile(options: { kubeconfigPath: string; readyPort: number }): string {
  return `.:53 {
  bind ${NODE_NETWORK.nodeIp}
  errors
  ready 127.0.0.1:${options.readyPort}
  kubernetes ${NODE_NETWORK.clusterDomain} in-addr.arpa ip6.arpa {
    kubeconfig ${options.kubeconfigPath}
    pods insecure
    fallthrough in-addr.arpa ip6.arpa
    ttl 5
  }
  cache 5
}
`;
}

export interface ClientIdentity {
  certPath: string;
  keyPath: string;
}

/** A kubeconfig that authenticates with a client certificate. */
export function clientKubeconfig(url: string, caPath: string, identity: ClientIdentity): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'local', cluster: { server: url, 'certificate-authority': caPath } }],
    users: [
      {
        name: 'component',
        user: { 'client-certificate': identity.certPath, 'client-key': identity.keyPath },
      },
    ],
    contexts: [{ name: 'local', context: { cluster: 'local', user: 'component' } }],
    'current-context': 'local',
  });
}
