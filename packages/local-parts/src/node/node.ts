// A real Kubernetes node on this machine, for tests, `seed up` and the benches: containerd
// 2 with nix-snapshotter as its snapshotter and image service (so `nix:0/nix/store/…`
// images run from the host's nix store), runc, a CNI bridge, the kubelet, the controller
// manager and scheduler, kube-proxy (Service IPs from pods and from the host), CoreDNS
// (Service names), kube-router's network-policy controller (NetworkPolicies enforced
// with iptables and ipset) and the controller manager's host-path provisioner (claims bind).
//
// Everything it writes lives in a temp folder, except what its parts insist on writing
// elsewhere; host-changes.ts records that first and puts it back on stop, and the next
// start does the same for a run that was killed.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { KubeApiServer } from '../kube-apiserver';
import { SERVICE_CLUSTER_IP_RANGE } from '../kube-apiserver';
import { ManagedProcess, sleep, waitFor } from '../managed-process';
import { freeLoopbackPorts } from '../ports';
import { recordHost, restoreHost, saveRecord, type HostRecord } from './host-changes';
import { kubeApply, kubeRequest } from './kube-requests';
import {
  clientKubeconfig,
  cniConfig,
  containerdConfig,
  corefile,
  KATA_HANDLER,
  KUBELET_HEALTHZ_PORT,
  kubeletConfig,
  NODE_NAME,
  NODE_NETWORK,
  PAUSE_IMAGE,
  paths,
  snapshotterConfig,
  type NodeLayout,
} from './node-config';
import { acquireNodeLock } from './node-lock';
import { addToStore, buildNixImage, loadNixImage, SEED_NIX_CONF } from './nix-image';

const run = promisify(execFile);

/** Builds (or finds cached) the node's binaries; same path from src/ and dist/. */
export const NODE_BINARIES_SCRIPT = path.resolve(__dirname, '../../../../scripts/node-binaries');

export interface NodeOptions {
  /** Directory holding the node's binaries. Default: $SEED_NODE_BIN_DIR, else scripts/node-binaries. */
  binDir?: string;
  /** How long to wait for another run's node on this machine to stop. Default 30 min. */
  lockTimeoutMs?: number;
  /** How long the node may take to become Ready. Default 120 s. */
  startTimeoutMs?: number;
  /**
   * nix settings for the node's own nix calls (nix-snapshotter realising an image's
   * closure), e.g. the builder's binary cache as its only substituter and key.
   */
  nixConfig?: string;
}

export interface LocalNode {
  name: string;
  /** The node's InternalIP: the bridge's gateway, where the host reaches pods from. */
  ip: string;
  podCidr: string;
  serviceCidr: string;
  dir: string;
  /** Stops every part and every container, and puts the host back. Idempotent. */
  stop(): Promise<void>;
  /** Kills and starts one part again, as a crash and a supervisor's restart would. */
  restart(part: 'kubelet' | 'containerd'): Promise<void>;
}

type Part =
  | 'containerd'
  | 'nix-snapshotter'
  | 'kubelet'
  | 'kube-controller-manager'
  | 'kube-scheduler'
  | 'kube-proxy'
  | 'kube-router'
  | 'coredns';

/** Starts a node registered to `api`, which must have been started with `forNode: true`. */
export async function startNode(api: KubeApiServer, options: NodeOptions = {}): Promise<LocalNode> {
  const binDir = options.binDir ?? (await nodeBinaries());
  const startTimeoutMs = options.startTimeoutMs ?? 120_000;
  const lock = await acquireNodeLock(options.lockTimeoutMs ?? 30 * 60_000);

  let record: HostRecord | undefined;
  const parts = new Map<Part, ManagedProcess>();
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      // Control loops first, so nothing restarts what is being stopped.
      for (const part of [
        'kube-router',
        'kube-proxy',
        'coredns',
        'kube-scheduler',
        'kube-controller-manager',
        'kubelet',
      ] as const) {
        await parts.get(part)?.stop(5_000);
      }
      try {
        if (record) await restoreHost(record);
      } finally {
        await lock.release();
      }
    })());

  try {
    const dir = await mkdtemp(path.join(tmpdir(), 'seed-node-'));
    record = await recordHost(dir, NODE_NETWORK.bridge, [api.dir]);
    await saveRecord(lock.recordPath, record);
    const layout: NodeLayout = { dir, binDir, serviceClusterIpRange: SERVICE_CLUSTER_IP_RANGE };
    const p = paths(layout);
    const deadline = Date.now() + startTimeoutMs;

    // containerd must run its own shim (Debian's 1.6 shim on PATH cannot serve it), and
    // nix-snapshotter's nix calls use Seed's nix.conf like every other nix call.
    const env = {
      ...process.env,
      PATH: `${binDir}:${process.env.PATH ?? ''}`,
      NIX_USER_CONF_FILES: process.env.NIX_USER_CONF_FILES ?? SEED_NIX_CONF,
      ...(options.nixConfig !== undefined && { NIX_CONFIG: options.nixConfig }),
    };
    const spawnPart = async (part: Part, args: string[]): Promise<ManagedProcess> => {
      // A restart racing with stop() would leave a part running on a host put back.
      if (stopped) throw new Error(`the node is stopping: not starting ${part}`);
      const started = ManagedProcess.spawn(path.join(binDir, part), args, dir, part, env);
      parts.set(part, started);
      const pid = started.pid;
      if (pid !== undefined) {
        record!.pids.push(pid);
        await saveRecord(lock.recordPath, record!);
      }
      return started;
    };

    await makeBridge();
    const [credentials] = await Promise.all([
      writeComponentCredentials(api, dir),
      writeFile(p.containerdConfig, containerdConfig(layout)),
      writeFile(p.snapshotterConfig, snapshotterConfig(layout)),
      mkdir(p.cniConfDir, { recursive: true }).then(() =>
        writeFile(path.join(p.cniConfDir, '10-seed.conflist'), cniConfig(layout)),
      ),
    ]);

    const startContainerd = async (until: number): Promise<void> => {
      // A killed containerd leaves its socket file behind: wait for a socket that answers,
      // or a kubelet started next finds no runtime and exits.
      await rm(p.containerdSocket, { force: true });
      const containerd = await spawnPart('containerd', ['--config', p.containerdConfig]);
      await waitFor('containerd', containerd, until, () => socketAnswers(p.containerdSocket));
    };
    await startContainerd(deadline);
    const snapshotter = await spawnPart('nix-snapshotter', ['--config', p.snapshotterConfig]);
    await waitFor('nix-snapshotter', snapshotter, deadline, () =>
      Promise.resolve(existsSync(p.snapshotterSocket)),
    );
    await loadPauseImage(layout);

    for (const [collection, object] of clusterObjects()) await kubeApply(api, collection, object);
    const startKubelet = async (): Promise<void> => {
      await spawnPart('kubelet', [
        `--config=${p.kubeletConfig}`,
        `--kubeconfig=${credentials.kubeconfigs.kubelet}`,
        `--root-dir=${p.kubeletRoot}`,
        `--cert-dir=${path.join(dir, 'kubelet-pki')}`,
        `--hostname-override=${NODE_NAME}`,
        `--node-ip=${NODE_NETWORK.nodeIp}`,
        '--v=1',
      ]);
    };
    await writeFile(p.kubeletConfig, kubeletConfig(layout, credentials.kubelet));
    await startKubelet();

    const [controllerPort, schedulerPort, proxyHealthPort, proxyMetricsPort, dnsReadyPort] =
      (await freeLoopbackPorts(5)) as [number, number, number, number, number];
    const delegated = (kubeconfig: string): string[] => [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      '--bind-address=127.0.0.1',
      '--leader-elect=false',
    ];
    await spawnPart('kube-controller-manager', [
      ...delegated(credentials.kubeconfigs.controllerManager),
      `--secure-port=${controllerPort}`,
      // 1.37 exits on unknown controllers; node IPAM is not needed (the CNI bridge
      // allocates pod addresses itself).
      '--controllers=*,-node-ipam-controller',
      '--use-service-account-credentials',
      `--service-account-private-key-file=${api.serviceAccountPrivateKeyPath}`,
      `--root-ca-file=${api.ca.certPath}`,
      // The volume provisioner of a one-node cluster: claims of the `local` class bind to
      // folders under /tmp/hostpath_pv (removed on stop).
      '--enable-hostpath-provisioner',
    ]);
    await spawnPart('kube-scheduler', [
      ...delegated(credentials.kubeconfigs.scheduler),
      `--secure-port=${schedulerPort}`,
    ]);
    await spawnPart('kube-proxy', [
      `--kubeconfig=${credentials.kubeconfigs.proxy}`,
      `--hostname-override=${NODE_NAME}`,
      '--proxy-mode=iptables',
      `--cluster-cidr=${NODE_NETWORK.podCidr}`,
      `--nodeport-addresses=${NODE_NETWORK.nodeIp}/32`,
      `--healthz-bind-address=127.0.0.1:${proxyHealthPort}`,
      `--metrics-bind-address=127.0.0.1:${proxyMetricsPort}`,
      // Zero leaves the host's conntrack settings alone.
      '--conntrack-max-per-core=0',
      '--conntrack-tcp-timeout-established=0s',
      '--conntrack-tcp-timeout-close-wait=0s',
    ]);
    await writeFile(
      p.corefile,
      corefile({ kubeconfigPath: credentials.kubeconfigs.coredns, readyPort: dnsReadyPort }),
    );
    const coredns = await spawnPart('coredns', ['-conf', p.corefile]);

    const kubelet = (): ManagedProcess => parts.get('kubelet')!;
    await waitFor('kubelet', kubelet(), deadline, () => nodeReady(api));
    // It reads its node's address from the Node object: started once the node is
    // registered.
    const policyEngine = await spawnPart('kube-router', [
      `--kubeconfig=${credentials.kubeconfigs.policyEngine}`,
      `--hostname-override=${NODE_NAME}`,
      '--run-firewall=true',
      '--run-router=false',
      '--run-service-proxy=false',
      `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
      // Its health answer is "alive" from the start, so it says nothing: off.
      '--health-port=0',
      '--v=1',
    ]);
    await waitFor('coredns', coredns, deadline, async () => {
      const response = await fetch(`http://127.0.0.1:${dnsReadyPort}/ready`);
      return response.ok;
    });
    // Its chains hooked into the built-in ones: from here on every pod's traffic passes
    // through them, and policies hold once kube-router has seen them.
    await waitFor('kube-router', policyEngine, deadline, async () =>
      (await run('iptables', ['-S', 'FORWARD'])).stdout.includes('-j KUBE-ROUTER-FORWARD'),
    );
    // Pods are refused until the service-account controller made `default` accounts.
    await waitFor(
      'kube-controller-manager',
      parts.get('kube-controller-manager')!,
      deadline,
      async () =>
        (await kubeRequest(api, 'GET', '/api/v1/namespaces/default/serviceaccounts/default'))
          .status === 200,
    );

    return {
      name: NODE_NAME,
      ip: NODE_NETWORK.nodeIp,
      podCidr: NODE_NETWORK.podCidr,
      serviceCidr: SERVICE_CLUSTER_IP_RANGE,
      dir,
      stop,
      restart: async (part) => {
        await parts.get(part)?.kill();
        if (part === 'containerd') await startContainerd(Date.now() + startTimeoutMs);
        else {
          await startKubelet();
          // Started, not merely spawned: a kubelet that cannot start exits, and says why.
          await waitFor('kubelet', kubelet(), Date.now() + startTimeoutMs, kubeletHealthy);
        }
      },
    };
  } catch (error) {
    await stop().catch((stopError: Error) => {
      process.emitWarning(`stopping a node that failed to start: ${stopError.message}`);
    });
    throw error;
  }
}

/**
 * The reconciler's cluster ranges (`SEED_*_CIDRS`) for this node. Its cluster DNS is
 * CoreDNS on the host at the node's address, not a pod in kube-system, so the
 * instances' NetworkPolicies must allow DNS there.
 */
export function reconcilerNetworkEnv(
  node: Pick<LocalNode, 'ip' | 'podCidr' | 'serviceCidr'>,
): Record<string, string> {
  const nodeAddress = `${node.ip}/32`;
  return {
    SEED_POD_CIDRS: node.podCidr,
    SEED_SERVICE_CIDRS: node.serviceCidr,
    SEED_NODE_CIDRS: nodeAddress,
    SEED_CLUSTER_DNS_CIDRS: nodeAddress,
  };
}

/** The node's binaries: $SEED_NODE_BIN_DIR, else built (or found cached) by the script. */
export async function nodeBinaries(): Promise<string> {
  return process.env.SEED_NODE_BIN_DIR ?? (await buildBinaries());
}

async function buildBinaries(): Promise<string> {
  // A cold build takes ~15 minutes; a cached one answers in milliseconds.
  const { stdout } = await run(NODE_BINARIES_SCRIPT, [], { maxBuffer: 16 * 1024 * 1024 });
  const dir = stdout.trim().split('\n').pop();
  if (!dir) throw new Error(`${NODE_BINARIES_SCRIPT} printed no directory`);
  return dir;
}

async function makeBridge(): Promise<void> {
  const { bridge, nodeIp, prefixLength, podCidr } = NODE_NETWORK;
  if (!existsSync(`/sys/class/net/${bridge}`)) {
    await run('ip', ['link', 'add', bridge, 'type', 'bridge']);
  }
  await run('ip', ['addr', 'replace', `${nodeIp}/${prefixLength}`, 'dev', bridge]);
  await run('ip', ['link', 'set', bridge, 'up']);
  // The bridge plugin turns on forwarding for its gateway; pods still must not leave the
  // machine through it.
  await run('iptables', ['-I', 'FORWARD', '-s', podCidr, '!', '-o', bridge, '-j', 'DROP']);
}

/**
 * The pause process as a nix-snapshotter image: the static binary goes into the nix store
 * and makes a one-path closure; loading it under the pinned name means the sandbox image
 * is never pulled (there is no registry).
 */
async function loadPauseImage(layout: NodeLayout): Promise<void> {
  const nix2container = path.join(layout.binDir, 'nix2container');
  // A folder, not the bare file: containerd mounts an image's store paths into a temp
  // folder to read it, and a file cannot be mounted there.
  const root = path.join(layout.dir, 'pause');
  await mkdir(path.join(root, 'bin'), { recursive: true });
  await copyFile(path.join(layout.binDir, 'pause'), path.join(root, 'bin', 'pause'));
  const pause = await addToStore(root);
  const archive = await buildNixImage(nix2container, 'pause-image.tar', {
    closure: [pause],
    config: { Entrypoint: [`${pause}/bin/pause`] },
    reference: PAUSE_IMAGE,
  });
  // containerd's socket exists before all its services do: an import that early can
  // end without naming its image ("image \"\": not found"); it succeeds a moment later.
  for (let attempt = 1; ; attempt++) {
    try {
      await loadNixImage(nix2container, paths(layout).containerdSocket, archive);
      return;
    } catch (error) {
      if (attempt >= 10) throw error;
      await sleep(300);
    }
  }
}

interface ComponentCredentials {
  kubelet: { caPath: string; servingCertPath: string; servingKeyPath: string };
  kubeconfigs: Record<
    'kubelet' | 'controllerManager' | 'scheduler' | 'proxy' | 'coredns' | 'policyEngine',
    string
  >;
}

/** One identity per component, as in a real cluster, each in its own kubeconfig. */
async function writeComponentCredentials(
  api: KubeApiServer,
  dir: string,
): Promise<ComponentCredentials> {
  const users = {
    kubelet: { commonName: `system:node:${NODE_NAME}`, organizations: ['system:nodes'] },
    controllerManager: { commonName: 'system:kube-controller-manager' },
    scheduler: { commonName: 'system:kube-scheduler' },
    proxy: { commonName: 'system:kube-proxy' },
    coredns: { commonName: 'seed:coredns' },
    policyEngine: { commonName: 'seed:kube-router' },
  };
  const kubeconfigs = {} as ComponentCredentials['kubeconfigs'];
  const issued = Object.entries(users).map(async ([name, subject]) => {
    const identity = await api.ca.issue({ name: `node-${name}`, usage: 'client', ...subject });
    const file = path.join(dir, `${name}.kubeconfig`);
    await writeFile(file, clientKubeconfig(api.url, api.ca.certPath, identity), { mode: 0o600 });
    kubeconfigs[name as keyof typeof users] = file;
  });
  const [serving] = await Promise.all([
    api.ca.issue({
      name: 'node-kubelet-serving',
      commonName: `system:node:${NODE_NAME}`,
      ipAddresses: [NODE_NETWORK.nodeIp],
      usage: 'server',
    }),
    ...issued,
  ]);
  return {
    kubelet: {
      caPath: api.ca.certPath,
      servingCertPath: serving.certPath,
      servingKeyPath: serving.keyPath,
    },
    kubeconfigs,
  };
}

/** What the cluster needs beyond the API server's defaults to run Seed's instances. */
interface ClusterObject {
  metadata: { name: string; annotations?: Record<string, string> };
  [field: string]: unknown;
}

function clusterObjects(): [collection: string, object: ClusterObject][] {
  return [
    [
      '/apis/node.k8s.io/v1/runtimeclasses',
      {
        apiVersion: 'node.k8s.io/v1',
        kind: 'RuntimeClass',
        metadata: { name: 'kata' },
        handler: KATA_HANDLER,
      },
    ],
    [
      '/apis/storage.k8s.io/v1/storageclasses',
      {
        apiVersion: 'storage.k8s.io/v1',
        kind: 'StorageClass',
        metadata: {
          name: 'local',
          annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' },
        },
        provisioner: 'kubernetes.io/host-path',
        reclaimPolicy: 'Delete',
        volumeBindingMode: 'Immediate',
      },
    ],
    [
      '/apis/rbac.authorization.k8s.io/v1/clusterroles',
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: 'seed:coredns' },
        rules: [
          {
            apiGroups: [''],
            resources: ['services', 'namespaces', 'pods'],
            verbs: ['list', 'watch'],
          },
          {
            apiGroups: ['discovery.k8s.io'],
            resources: ['endpointslices'],
            verbs: ['list', 'watch'],
          },
        ],
      },
    ],
    userBinding('seed:coredns'),
    [
      '/apis/rbac.authorization.k8s.io/v1/clusterroles',
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: 'seed:kube-router' },
        // Its informers start for every kind it can handle, though only the policy
        // controller runs; its own node is read for its address.
        rules: [
          {
            apiGroups: [''],
            resources: ['pods', 'namespaces', 'nodes', 'services', 'endpoints'],
            verbs: ['get', 'list', 'watch'],
          },
          {
            apiGroups: ['networking.k8s.io'],
            resources: ['networkpolicies'],
            verbs: ['list', 'watch'],
          },
          {
            apiGroups: ['discovery.k8s.io'],
            resources: ['endpointslices'],
            verbs: ['list', 'watch'],
          },
        ],
      },
    ],
    userBinding('seed:kube-router'),
  ];
}

/** Binds the ClusterRole `name` to the user of the same name (a component's identity). */
function userBinding(name: string): [collection: string, object: ClusterObject] {
  return [
    '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name }],
    },
  ];
}

/** Whether something accepts connections on a Unix socket. */
function socketAnswers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(socketPath);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The kubelet's own health check (`healthzPort` in its configuration). */
async function kubeletHealthy(): Promise<boolean> {
  const response = await fetch(`http://127.0.0.1:${KUBELET_HEALTHZ_PORT}/healthz`, {
    signal: AbortSignal.timeout(2_000),
  });
  return response.ok;
}

async function nodeReady(api: KubeApiServer): Promise<boolean> {
  const { status, body } = await kubeRequest(api, 'GET', `/api/v1/nodes/${NODE_NAME}`);
  if (status !== 200) return false;
  const conditions = (body as { status?: { conditions?: { type: string; status: string }[] } })
    .status?.conditions;
  return conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}
