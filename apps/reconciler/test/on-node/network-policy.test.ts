// Tenants' network isolation on the real node (issue #16, item 4): the reconciler applies
// each flake's NetworkPolicies, the real API server validates them, and kube-router's
// network-policy controller enforces them with iptables and ipset. Each attack is tried
// from inside a tenant's pod; every path Seed allows is tried too.
//
// The pods run a prober: busybox httpd whose CGI `probe` connects from inside the pod to
// `host:port` (or resolves a name) and answers `reached` or `blocked`. The test asks it
// from the host, which reaches every pod on its node whatever the policies say.
//
// The run's one local cluster is shared: `takeClusterTurn` waits for the other files on it
// (test/on-node/ is a jest project whose global set-up starts the cluster).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { loadAllYaml, type V1Pod } from '@kubernetes/client-node';
import { deriveNamespace, type SeedMeta } from '@seed/contracts';
import {
  freeLoopbackPorts,
  kubeRequest,
  reconcilerNetworkEnv,
  takeClusterTurn,
  type ClusterTurn,
} from '@seed/testing';
import { Cluster, generation, meta, startReconciler, type RunningReconciler } from '../cluster';
import { nodeNix2container, shellImage } from './node-images';

const START_TIMEOUT_MS = 30 * 60_000;
const TEST_TIMEOUT_MS = 3 * 60_000;
/** Bound for a pod to be created, started and ready. */
const POD_READY_BOUND_MS = 90_000;
/** Bound for an answer to settle: a policy or pod just applied is enforced once synced. */
const SETTLE_BOUND_MS = 30_000;
/** The port every prober serves its CGI on; the others are plain pages. */
const PROBE_PORT = 8080;
const UNEXPOSED_PORT = 9090;
const SEED_SYSTEM = 'seed-system';
const SEED_SYSTEM_POLICIES = path.resolve(
  __dirname,
  '../../../../deploy/manifests/network-policy.yaml',
);

const TENANT = 'github:acme/tenant';
const NEIGHBOUR = 'github:acme/neighbour';

let cluster: ClusterTurn;
let reconciler: RunningReconciler | undefined;
let kube: Cluster;
let proberImage: string;
/** Listeners on the node's address: the shoot pool's port and some other port. */
let shootPool: Server;
let otherService: Server;
let shootPoolPort: number;
let otherPort: number;

/**
 * httpd on every port of `$PORTS`, with the CGI `probe` on the first. The CGI is written
 * at start, when busybox's store path (its interpreter) is known. `nc` connected means
 * reached: it ends at once on a server that answers, or is cut by `timeout` on one that
 * waits for the client; refused or dropped ends it with 1.
 */
const PROBER_SCRIPT = `
$BB mkdir -p /tmp/www/cgi-bin
$BB cat > /tmp/www/cgi-bin/probe <<EOF
#!$BB sh
$BB printf 'Content-Type: text/plain\\r\\n\\r\\n'
for pair in \\$($BB echo "\\$QUERY_STRING" | $BB tr '&' ' '); do
  case "\\$pair" in host=*) host=\\\${pair#host=};; port=*) port=\\\${pair#port=};; name=*) name=\\\${pair#name=};; esac
done
if [ -n "\\$name" ]; then
  $BB timeout 5 $BB nslookup "\\$name" "\\$host" >/dev/null 2>&1 && echo reached || echo blocked
else
  $BB timeout 4 $BB nc -w 3 "\\$host" "\\$port" </dev/null >/dev/null 2>&1
  rc=\\$?
  if [ \\$rc -eq 0 ] || [ \\$rc -ge 124 ]; then echo reached; else echo blocked; fi
fi
EOF
$BB chmod +x /tmp/www/cgi-bin/probe
echo "prober listening on $PORTS"
trap 'kill $pids; exit 0' TERM
for port in $PORTS; do
  $BB httpd -f -p "$port" -h /tmp/www & pids="$pids $!"
done
wait`;

type Answer = 'reached' | 'blocked';

/** Asks the prober in `from` to connect to `host:port`. */
async function probeOnce(from: V1Pod, host: string, port: number): Promise<Answer | undefined> {
  return ask(from, `host=${host}&port=${port}`);
}

async function ask(from: V1Pod, query: string): Promise<Answer | undefined> {
  const url = `http://${from.status?.podIP}:${PROBE_PORT}/cgi-bin/probe?${query}`;
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
  const text = (await response?.text())?.trim();
  return text === 'reached' || text === 'blocked' ? text : undefined;
}

/**
 * The answer once it is `want` (a policy just applied, a pod just started: kube-router
 * syncs on every change), else the last one after the bound. Asked once more at the end:
 * what held must still hold.
 */
async function settledAnswer(
  want: Answer,
  attempt: () => Promise<Answer | undefined>,
): Promise<Answer | undefined> {
  let answer: Answer | undefined;
  for (const deadline = Date.now() + SETTLE_BOUND_MS; Date.now() < deadline;) {
    answer = await attempt();
    if (answer === want) return attempt();
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return answer;
}

const reaches = (from: V1Pod, host: string, port: number) =>
  settledAnswer('reached', () => probeOnce(from, host, port));
const isBlockedFrom = (from: V1Pod, host: string, port: number) =>
  settledAnswer('blocked', () => probeOnce(from, host, port));

async function podOf(namespace: string, labelSelector: string): Promise<V1Pod> {
  const deadline = Date.now() + POD_READY_BOUND_MS;
  for (;;) {
    const pods = (await kube.core.listNamespacedPod({ namespace, labelSelector })).items;
    const ready = pods.find(
      (pod) =>
        pod.metadata?.deletionTimestamp === undefined &&
        pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    );
    if (ready) return ready;
    if (Date.now() > deadline) throw new Error(`no ready pod ${labelSelector} in ${namespace}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

const instancePod = (flake: string, name: string) =>
  podOf(deriveNamespace(flake), `seed.loom.farm/instance=${name}`);
const systemPod = (name: string) => podOf(SEED_SYSTEM, `app.kubernetes.io/name=${name}`);
const ipOf = (pod: V1Pod) => pod.status!.podIP!;

async function systemPods() {
  return {
    redis: await systemPod('redis'),
    webhook: await systemPod('webhook'),
    reconcilerPod: await systemPod('reconciler'),
  };
}

function listen(port: number, host: string, what: string): Promise<Server> {
  const server = createServer((_request, response) => response.end(`${what}\n`));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

/** A pod of seed-system as deploy/ runs it, but running the prober on `ports`. */
async function startSystemPod(name: string, ports: { name: string; port: number }[]) {
  await kube.core.createNamespacedPod({
    namespace: SEED_SYSTEM,
    body: {
      metadata: { name, labels: { 'app.kubernetes.io/name': name } },
      spec: {
        automountServiceAccountToken: false,
        containers: [
          {
            name,
            image: `nix:0${proberImage}`,
            env: [{ name: 'PORTS', value: ports.map((p) => p.port).join(' ') }],
            ports: ports.map((p) => ({ name: p.name, containerPort: p.port })),
            readinessProbe: { tcpSocket: { port: PROBE_PORT } },
          },
        ],
      },
    },
  });
}

beforeAll(async () => {
  proberImage = await shellImage(
    await nodeNix2container(),
    'prober',
    `PORTS=\${PORTS:-${PROBE_PORT} ${UNEXPOSED_PORT}}\n${PROBER_SCRIPT}`,
  );

  cluster = await takeClusterTurn();
  [shootPoolPort, otherPort] = (await freeLoopbackPorts(2)) as [number, number];
  shootPool = await listen(shootPoolPort, cluster.node.ip, 'shoot pool');
  otherService = await listen(otherPort, cluster.node.ip, 'a service of the node');
  reconciler = await startReconciler(cluster.api.kubeconfigPath, {
    ...reconcilerNetworkEnv(cluster.node),
    SEED_SHOOT_POOL_PORT: String(shootPoolPort),
  });
  kube = new Cluster(cluster.api.kubeconfigPath);

  // seed-system as deploy/ installs it: its own policies, a webhook, Redis, a reconciler.
  await kube.core.createNamespace({ body: { metadata: { name: SEED_SYSTEM } } });
  // Pods are refused until the service-account controller made the namespace's `default`.
  await kube.until(
    () =>
      kube.core.readNamespacedServiceAccount({ name: 'default', namespace: SEED_SYSTEM }).then(
        () => true,
        () => false,
      ),
    'the default ServiceAccount of seed-system',
  );
  // Sent as JSON: client-node's models would drop the ingress rules' `from`.
  for (const policy of loadAllYaml(readFileSync(SEED_SYSTEM_POLICIES, 'utf8'))) {
    const { status, body } = await kubeRequest(
      cluster.api,
      'POST',
      `/apis/networking.k8s.io/v1/namespaces/${SEED_SYSTEM}/networkpolicies`,
      policy,
    );
    if (status >= 300) throw new Error(`${status} ${JSON.stringify(body)}`);
  }
  await startSystemPod('webhook', [{ name: 'http', port: PROBE_PORT }]);
  await startSystemPod('redis', [
    { name: 'http', port: PROBE_PORT },
    { name: 'redis', port: 6379 },
  ]);
  await startSystemPod('reconciler', [
    { name: 'http', port: PROBE_PORT },
    { name: 'grpc', port: UNEXPOSED_PORT },
  ]);

  const prober = (name: string, overrides: Partial<SeedMeta> = {}): [SeedMeta, string] => [
    meta(name, overrides),
    proberImage,
  ];
  await apply(TENANT, [
    prober('web', { expose: { http: { port: PROBE_PORT, protocol: 'http' } } }),
    prober('mate'),
    prober('shooter', { shoot: { enable: true } }),
  ]);
  await apply(NEIGHBOUR, [
    prober('other', { expose: { http: { port: PROBE_PORT, protocol: 'http' } } }),
  ]);
}, START_TIMEOUT_MS);

afterAll(async () => {
  await reconciler?.stop();
  shootPool?.close();
  otherService?.close();
  await cluster?.end();
}, 120_000);

async function apply(flake: string, instances: [SeedMeta, string][]): Promise<void> {
  const images = Object.fromEntries(instances.map(([m, image]) => [m.name, image]));
  await reconciler!.builder.apply(
    generation(
      flake,
      instances.map(([m]) => m),
      'a'.repeat(40),
      images,
    ),
  );
}

describe('attacks from a tenant pod', () => {
  it(
    'attack: a tenant pod reaching seed-system (Redis, webhook, reconciler) is blocked',
    async () => {
      const web = await instancePod(TENANT, 'web');
      const { redis, webhook, reconcilerPod } = await systemPods();
      expect({
        redis: await isBlockedFrom(web, ipOf(redis), 6379),
        webhook: await isBlockedFrom(web, ipOf(webhook), PROBE_PORT),
        reconciler: await isBlockedFrom(web, ipOf(reconcilerPod), UNEXPOSED_PORT),
      }).toEqual({ redis: 'blocked', webhook: 'blocked', reconciler: 'blocked' });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "attack: a tenant pod reaching another flake's unexposed ports is blocked, both ways",
    async () => {
      const web = await instancePod(TENANT, 'web');
      const other = await instancePod(NEIGHBOUR, 'other');
      expect({
        toNeighbour: await isBlockedFrom(web, ipOf(other), UNEXPOSED_PORT),
        fromNeighbour: await isBlockedFrom(other, ipOf(web), UNEXPOSED_PORT),
      }).toEqual({ toNeighbour: 'blocked', fromNeighbour: 'blocked' });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "attack: a tenant pod reaching its node's other ports (kubelet, a node service, the shoot pool without shoots) is blocked",
    async () => {
      const web = await instancePod(TENANT, 'web');
      const nodeIp = cluster.node.ip;
      expect({
        kubelet: await isBlockedFrom(web, nodeIp, 10250),
        nodeService: await isBlockedFrom(web, nodeIp, otherPort),
        shootPool: await isBlockedFrom(web, nodeIp, shootPoolPort),
      }).toEqual({ kubelet: 'blocked', nodeService: 'blocked', shootPool: 'blocked' });
    },
    TEST_TIMEOUT_MS,
  );
});

describe('every path Seed allows still works', () => {
  it(
    "the flake's pods reach each other on any port",
    async () => {
      const web = await instancePod(TENANT, 'web');
      const mate = await instancePod(TENANT, 'mate');
      expect({
        webToMate: await reaches(web, ipOf(mate), UNEXPOSED_PORT),
        mateToWeb: await reaches(mate, ipOf(web), UNEXPOSED_PORT),
      }).toEqual({ webToMate: 'reached', mateToWeb: 'reached' });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'the cluster DNS answers (CoreDNS on the node)',
    async () => {
      const web = await instancePod(TENANT, 'web');
      const lookup = () =>
        ask(web, `host=${cluster.node.ip}&name=kubernetes.default.svc.cluster.local`);
      expect(await settledAnswer('reached', lookup)).toBe('reached');
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'an exposed port answers another flake, by pod and by Service',
    async () => {
      const web = await instancePod(TENANT, 'web');
      const other = await instancePod(NEIGHBOUR, 'other');
      const service = await kube.core.readNamespacedService({
        name: 'web',
        namespace: deriveNamespace(TENANT),
      });
      expect({
        pod: await reaches(other, ipOf(web), PROBE_PORT),
        service: await reaches(other, service.spec!.clusterIP!, PROBE_PORT),
      }).toEqual({ pod: 'reached', service: 'reached' });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "an instance with shoots enabled reaches the shoot pool's port on the node, and no other",
    async () => {
      const shooter = await instancePod(TENANT, 'shooter');
      expect({
        shootPool: await reaches(shooter, cluster.node.ip, shootPoolPort),
        nodeService: await isBlockedFrom(shooter, cluster.node.ip, otherPort),
      }).toEqual({ shootPool: 'reached', nodeService: 'blocked' });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "seed-system's own paths: Redis from the webhook only, the reconciler's gRPC from nothing here",
    async () => {
      const { redis, webhook, reconcilerPod } = await systemPods();
      expect({
        webhookToRedis: await reaches(webhook, ipOf(redis), 6379),
        reconcilerToRedis: await isBlockedFrom(reconcilerPod, ipOf(redis), 6379),
        webhookToReconciler: await isBlockedFrom(webhook, ipOf(reconcilerPod), UNEXPOSED_PORT),
      }).toEqual({
        webhookToRedis: 'reached',
        reconcilerToRedis: 'blocked',
        webhookToReconciler: 'blocked',
      });
    },
    TEST_TIMEOUT_MS,
  );
});
