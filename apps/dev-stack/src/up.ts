import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REDIS_USERS } from '@seed/builds-queue';
import {
  createPlatformCertificates,
  exampleFlakeFiles,
  FlakeRepo,
  freeLoopbackPorts,
  installSeedFlakeCrd,
  reconcilerNetworkEnv,
  SEED_SECRETS_PROGRAM,
  secretsToolsDir,
  type LocalPrometheus,
  type PlatformCertificates,
} from '@seed/local-parts';
import { removeUnmountedTree } from '@seed/mount-table';
import { NixClient, substituterNixConfig, type LocalNix } from '@seed/nix-eval';
import {
  FINAL_BUILD_STATES,
  deriveNamespace,
  flakeHookId,
  readFlakeRegistry,
  readTlsDirectory,
  type BuildRecord,
  type FlakeStatus__Output,
  type SeedFlakeResource,
} from '@seed/contracts';
import { loadKubeConfig } from '@seed/kube-config';
import {
  SeedFlakeClient,
  applyFlakeRegistry,
  requestRebuild,
  rollBack,
  setSuspended,
} from '@seed/seed-flakes';
import { DEFAULT_SHOOT_POOL_PORT } from '@seed/k8s-model';
import { BuilderApi, formatPhases, ReconcilerApi, seconds } from '@seed/platform-client';
import { VtpmStore } from '@seed/vtpm';
import { deliverGithubPush, pingHook } from './delivery';
import { LoopbackForge, type ReceivedStatus } from './loopback-forge';
import { decryptInVm, placedTpm, type SecretsReport } from './instance-secrets';
import { CHANGED_INSTANCE, resizeWeb } from './example-flake';
import { KubeObjects, type ObjectSummary } from './kube-objects';
import { LocalStack } from './local-stack';
import { Progress, waitFor } from './progress';
import { answerOnceReachable, dnsQuery, httpGet, waitUntilAvailable } from './instances';
import { ALERT_RULES_PATH, askDashboard, dashboardQueries, type PanelAnswer } from './dashboard';
import {
  formatChangeReport,
  formatDashboard,
  formatForgeStatuses,
  formatLogs,
  formatPushReport,
  formatSecretsReport,
  formatSeedFlakes,
  formatShootReport,
} from './up-report';

export interface UpOptions {
  nix: LocalNix;
  /** Where progress and reports go. */
  write: (text: string) => void;
  /** How long each wait (a service's readiness, a build, the shoot pool) may take. */
  waitTimeoutMs: number;
  signal: AbortSignal;
  /** Runs once every step passed, before the stack stops (`--keep`, tests). */
  whileRunning?: (stack: RunningStack) => Promise<void>;
}

/** Addresses of a stack that is up, for the everyday commands and tests. */
export interface RunningStack {
  flake: string;
  namespace: string;
  flakeDir: string;
  kubeconfigPath: string;
  redisUrl: string;
  /** Redis's user with every right, for an operator's redis-cli. */
  redisAdmin: { username: string; passwordFile: string };
  webhookUrl: string;
  builderUrl: string;
  reconcilerAddress: string;
  /** The operator's client certificate folder (`SEED_TLS_DIR` of the CLI). */
  operatorTlsDir: string;
  /** The builder API's token (`SEED_BUILDER_API_TOKEN_FILE`). */
  builderTokenFile: string;
  /** The shoot pool's status token (`SEED_SHOOT_STATUS_TOKEN_FILE`). */
  shootStatusTokenFile: string;
  shootUrl: string;
  /** The Prometheus scraping the services, with Seed's alert rules loaded. */
  prometheusUrl: string;
  /** `<service>.log` of each service. */
  logDir: string;
  /** What a signed push to the webhook names (benches deliver pushes of their own). */
  delivery: { repository: string; branch: string; secret: string };
  /** The node's and the API server's temp folders (their processes' command lines name them). */
  nodeDir: string;
  apiServerDir: string;
  /** The store and nix.conf of the builder's nix calls (benches repeat them by hand). */
  builderNix: { store: string; confFile: string };
}

export interface PushReport {
  commit: string;
  build: string;
  generation: string;
  phases: Record<string, number>;
  /** As the reconciler reports them. */
  instances: { name: string; rollout: string; readyReplicas: number }[];
  objects: ObjectSummary[];
}

export interface UpReport {
  flake: string;
  namespace: string;
  first: PushReport;
  /** What each instance served over its Service after the first push. */
  served: ServedReport;
  /** The example's SeedFlake once Ready, as `kubectl get seedflakes` shows it. */
  seedFlakes: SeedFlakeResource[];
  /**
   * The rollback to the first generation, and who did it; then the rebuild of the first
   * commit (`seed rebuild --commit`), a build of its own that changed nothing.
   */
  rollback: { generation: string; by: string; rebuild: { jobId: string; changed: boolean } };
  /** The commit statuses the builder sent to the (loopback) forge, in order. */
  statuses: ReceivedStatus[];
  /** A second flake added and removed through its SeedFlake while the services ran. */
  registration: { servedMs: number; droppedMs: number; status: string };
  change: PushReport & {
    instance: string;
    changed: string[];
    unchanged: string[];
    /** The instance's pods before and after the rollout, oldest first. */
    podsBefore: string[];
    podsAfter: string[];
    servedAfter: string;
  };
  /** The example instance's recipient, and a secret encrypted to it, decrypted in a VM. */
  secrets: SecretsReport;
  /** What seed-shoot, run in the caller's pod, printed and exited with. */
  shoot: {
    exitCode: number;
    stdout: string;
    stderr: string;
    durationMs: number;
    command: string[];
    caller: string;
    callerPod: string;
    fileOnHost: string;
    servedBack: string;
  };
  /** The last few lines of each instance's log. */
  logs: Record<string, string[]>;
  /** What Prometheus answered to each panel query of the Grafana dashboard. */
  dashboard: PanelAnswer[];
}

export interface ServedReport {
  web: string;
  api: string;
  dns: { udp: string; tcp: string };
}

const STEPS = 19;
const REPOSITORY = 'local/seed-up';
/** The SeedFlake `seed up` registers its example flake as. */
const EXAMPLE_SEEDFLAKE = 'example';
const BRANCH = 'main';
const SHOOT_FILE = 'from-a-shoot.txt';
/** A long wait says it is still waiting this often. */
const STILL_WAITING_EVERY_MS = 15_000;
/** Long enough for the shoot pool to stop its VMs and the builder to hand back a build. */
const STOP_GRACE_MS = 20_000;
/** The example's dns instance answers for this zone (examples/hello/servers). */
const EXAMPLE_DNS_NAME = 'web.hello.seed';

async function onPath(binary: string): Promise<void> {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir === '') continue;
    const found = await access(path.join(dir, binary), constants.X_OK).then(
      () => true,
      () => false,
    );
    if (found) return;
  }
  throw new Error(`${binary} is not on PATH (scripts/setup installs it)`);
}

/**
 * `seed up`: the whole platform on loopback, driven the way a tenant and an operator
 * would — push, signed webhook, build, apply, a change to one instance, a shoot — with
 * the Kubernetes objects read back from the API server. Stops everything it started,
 * whether the steps pass or not.
 */
export async function runUp(options: UpOptions): Promise<UpReport> {
  const { signal, waitTimeoutMs } = options;
  const progress = new Progress(options.write, STEPS, signal);
  const workDir = await mkdtemp(path.join(tmpdir(), 'seed-up-'));
  const logDir = path.join(workDir, 'logs');
  await mkdir(logDir);
  const stack = new LocalStack(signal, logDir);
  const tpmRoot = path.join(workDir, 'tpm');
  let reconciler: ReconcilerApi | undefined;
  let prometheus: LocalPrometheus | undefined;
  let forge: LoopbackForge | undefined;
  let scrapedSince = 0;
  try {
    const nix = new NixClient(options.nix);
    await progress.step('check the tools Seed runs on', async (note) => {
      note(await nix.version());
      for (const binary of ['git', 'redis-server', 'qemu-system-x86_64', 'swtpm', 'tpm2'])
        await onPath(binary);
      if (process.getuid?.() !== 0) {
        throw new Error(
          "the shoot pool bind-mounts volumes into its VMs' shares, which needs root: run `sudo -E pnpm seed up`",
        );
      }
    });

    const redis = await progress.step('start Redis', async (note) => {
      const started = await stack.startRedis();
      note(`redis-server on ${started.url}`);
      return started;
    });

    // Every tenant's derivation builds through it, in nix's sandbox as a build user; the
    // builder only asks (docs/builder.md, "The nix daemon").
    const daemon = await progress.step("start the builder's nix-daemon", async (note) => {
      const started = await stack.startNixDaemon(path.join(workDir, 'nix-daemon'));
      note(`sandboxed builds as nixbld users, store ${started.storeRoot}`);
      return started;
    });

    // The builder publishes every closure to a signed binary cache, and the node's nix
    // trusts only that cache and its key: the builder keeps a store of its own, so every
    // image reaches the node the way it reaches a node that did not build it.
    const [builderHttp, builderGrpc] = (await freeLoopbackPorts(2)) as [number, number];
    const builderUrl = `http://127.0.0.1:${builderHttp}`;
    const cacheKey = await nix.generateSigningKey('seed-up-builder');
    const cacheKeyFile = path.join(workDir, 'cache-signing.key');
    await writeFile(cacheKeyFile, cacheKey.secretKey, { mode: 0o600 });

    const cluster = await progress.step(
      'start the Kubernetes API server and a node',
      async (note) => {
        note('etcd, kube-apiserver, containerd + nix-snapshotter, kubelet, controller-manager,');
        note('scheduler, kube-proxy, CoreDNS and kube-router enforcing NetworkPolicies');
        note('(the first run builds them: scripts/*-binaries)');
        const started = await stack.startCluster({
          nixConfig: substituterNixConfig({
            url: `${builderUrl}/nix-cache`,
            publicKeys: [cacheKey.publicKey],
          }),
        });
        note(`${started.api.url}, kubeconfig ${started.api.kubeconfigPath}`);
        await installSeedFlakeCrd(started.api);
        note('the SeedFlake CRD (deploy/manifests/seedflake-crd.yaml) is served');
        note(`node ${started.node.name} at ${started.node.ip}, pods in ${started.node.podCidr}`);
        // Said plainly: the one part of an instance's isolation this machine cannot show.
        note('no usable KVM here: the `kata` RuntimeClass runs pods with runc on this node');
        return started;
      },
    );
    const kube = cluster.api;

    const repo = await progress.step(
      'create a flake repository from examples/hello',
      async (note) => {
        const created = await FlakeRepo.create(await exampleFlakeFiles(), workDir);
        note(`${created.dir} (instances web, api, dns)`);
        // templates.instance builds real NixOS systems: that needs nixpkgs from the network.
        note('offline stand-in for templates.instance: the same flake shape, small servers');
        return created;
      },
    );
    const flake = repo.url();
    const namespace = deriveNamespace(flake);
    const secret = randomBytes(24).toString('hex');

    const kubeConfig = loadKubeConfig(kube.kubeconfigPath);
    const seedFlakes = new SeedFlakeClient(kubeConfig, 'seed-up');
    const webhookSecrets = path.join(workDir, 'webhook-secrets');
    const forgeTokenValue = randomBytes(16).toString('hex');
    const statusForge = await LoopbackForge.start(forgeTokenValue);
    forge = statusForge;
    const seedFlake = await progress.step(
      'register the flake: a SeedFlake seeded from a registry document',
      async (note) => {
        const registryFile = path.join(workDir, 'flakes.yaml');
        const secretFile = path.join(workDir, 'example.secret');
        await writeFile(secretFile, secret, { mode: 0o600 });
        const forgeToken = path.join(workDir, 'forge.token');
        await writeFile(forgeToken, forgeTokenValue, { mode: 0o600 });
        await writeFile(
          registryFile,
          `flakes:\n  - { name: ${EXAMPLE_SEEDFLAKE}, flake: "${flake}", repository: ${REPOSITORY}, forge: github, branch: ${BRANCH}, secretFile: ${secretFile},\n      forgeStatus: { api: "${statusForge.url}", tokenFile: ${forgeToken} } }\n`,
        );
        note(`commit statuses go to GitHub's status API on loopback, ${statusForge.url}`);
        const read = readFlakeRegistry(await readFile(registryFile, 'utf8'), registryFile, {});
        if ('problems' in read) throw new Error(read.problems.join('\n'));
        const [name] = await applyFlakeRegistry(seedFlakes, read.entries, webhookSecrets);
        note(`${registryFile} → SeedFlake ${name}; its webhook secret in ${webhookSecrets}`);
        return name!;
      },
    );

    const builderNix = {
      store: daemon.storeUrl,
      confFile: options.nix.confFile ?? '/etc/seed/nix.conf',
    };
    const { webhook, builder, credentials } = await progress.step(
      'start the webhook, the builder and the reconciler',
      async (note) => {
        // gRPC between the parts is mutual TLS, and the HTTP APIs want tokens, as deployed.
        const credentials = await platformCredentials(path.join(workDir, 'credentials'));
        note(`platform CA, certificates and API tokens in ${credentials.certificates.ca.dir}`);
        const reconcilerService = await stack.startService(
          'reconciler',
          // The node's own ranges: its DNS and shoot pool are on the host, which the
          // instances' NetworkPolicies must then allow.
          {
            SEED_KUBECONFIG: kube.kubeconfigPath,
            SEED_TLS_DIR: credentials.certificates.reconciler,
            SEED_SEEDFLAKE_STATUS_SECONDS: '1',
            // A deleted SeedFlake's flake goes at once here (300 s in a cluster).
            SEED_REMOVAL_GRACE_SECONDS: '0',
            ...reconcilerNetworkEnv(cluster.node),
          },
          { stopGraceMs: STOP_GRACE_MS },
        );
        const builderService = await stack.startService(
          'builder',
          {
            ...redis.serviceEnv(REDIS_USERS.builder),
            SEED_RECONCILER_ADDRESS: reconcilerService.grpcAddress!,
            SEED_TLS_DIR: credentials.certificates.builder,
            SEED_BUILDER_API_TOKEN_FILE: credentials.builderTokenFile,
            SEED_NIX_BIN: options.nix.nixBinary,
            SEED_SHUTDOWN_GRACE_MS: String(STOP_GRACE_MS / 2),
            SEED_BINARY_CACHE_DIR: path.join(workDir, 'binary-cache'),
            SEED_BINARY_CACHE_SECRET_KEY_FILE: cacheKeyFile,
            SEED_HISTORY_DIR: path.join(workDir, 'history'),
            SEED_NIX_STORE: builderNix.store,
            SEED_NIX_CONF: builderNix.confFile,
          },
          { stopGraceMs: STOP_GRACE_MS, ports: [builderHttp, builderGrpc] },
        );
        const webhookService = await stack.startService(
          'webhook',
          {
            ...redis.serviceEnv(REDIS_USERS.webhook),
            SEED_KUBECONFIG: kube.kubeconfigPath,
            SEED_WEBHOOK_SECRETS_DIR: webhookSecrets,
          },
          { stopGraceMs: STOP_GRACE_MS },
        );
        for (const service of [reconcilerService, builderService, webhookService]) {
          await stack.ready(service, waitTimeoutMs);
          note(`${service.name} ready on ${service.url}`);
        }
        // Scraping from here on, so the pushes below are in the dashboard's rates; the
        // shoot pool's address is fixed (pods are told it), so it is a target already.
        const started = [reconcilerService, builderService, webhookService];
        prometheus = await stack.startPrometheus(
          [
            ...started.map(({ name, url }) => ({ job: name, url: `${url}/metrics` })),
            {
              job: 'shoot-pool',
              url: `http://${cluster.node.ip}:${DEFAULT_SHOOT_POOL_PORT}/metrics`,
            },
          ],
          [ALERT_RULES_PATH],
        );
        const scraping = prometheus;
        await waitFor(
          'Prometheus to scrape the services',
          async () => {
            const health = await scraping.targetHealth();
            return started.every(({ name }) => health[name] === 'up') ? true : undefined;
          },
          { timeoutMs: waitTimeoutMs, signal, intervalMs: 250 },
        );
        scrapedSince = Date.now();
        note(`prometheus on ${prometheus.url} scrapes them every second`);
        return { webhook: webhookService, builder: builderService, credentials };
      },
    );
    reconciler = new ReconcilerApi(
      stack.service('reconciler').grpcAddress!,
      readTlsDirectory(credentials.certificates.operator),
    );
    const builds = new BuilderApi(
      builder.url,
      await readFile(credentials.builderTokenFile, 'utf8'),
    );
    const kubeObjects = new KubeObjects(kube.kubeconfigPath);

    /** Delivers the push of `after`, follows its build to the end and reads the objects. */
    const pushAndFollow = async (
      before: string,
      after: string,
      note: (text: string) => void,
    ): Promise<PushReport> => {
      const delivery = await deliverGithubPush(
        webhook.url,
        secret,
        { repository: REPOSITORY, branch: BRANCH, before, after },
        signal,
      );
      const jobId = delivery.jobIds[0]!;
      note(`webhook accepted delivery ${delivery.deliveryId}: queued ${jobId}`);
      const build = await followBuild(builds, jobId, note, {
        timeoutMs: waitTimeoutMs,
        signal,
        alive: () => stack.assertRunning(),
      });
      const status = await reconciler!.status(flake);
      if (status.generation !== build.generation) {
        throw new Error(
          `the reconciler reports generation ${status.generation}, the build ${build.generation}`,
        );
      }
      note(`reconciler applied generation ${status.generation} to ${status.namespace}`);
      return {
        commit: after,
        build: jobId,
        generation: status.generation,
        phases: build.phases,
        instances: status.instances.map(({ name, rollout, readyReplicas }) => ({
          name,
          rollout,
          readyReplicas,
        })),
        objects: await kubeObjects.list(namespace),
      };
    };

    // Before the first push: the daemon's TPM agent places the TPM of the example's
    // instance with secrets, and the reconciler applies that instance's Deployment only
    // once it is placed (docs/secrets.md, "Kata and the pod").
    await progress.step('start the shoot pool and its TPM agent on the node', async (note) => {
      const tools = await secretsToolsDir();
      // The shoot pool listens where SEED_SHOOT_URL points pods: the node's IP.
      const pool = await stack.startService(
        'shoot-pool',
        {
          SEED_SHOOT_POOL_SIZE: '1',
          SEED_SHOOT_RUN_ROOT: path.join(workDir, 'shoot-pool'),
          SEED_KUBECONFIG: kube.kubeconfigPath,
          SEED_NODE_NAME: cluster.node.name,
          SEED_SHOOT_STATUS_TOKEN_FILE: credentials.shootStatusTokenFile,
          SEED_TPM_ROOT: tpmRoot,
          // An instance with secrets rolls out once its TPM is placed: look every second.
          SEED_TPM_SYNC_SECONDS: '1',
          // Creates each new TPM's identity with tpm2-tools and age-keygen from PATH.
          SEED_TPM_IDENTITY_PROGRAM: SEED_SECRETS_PROGRAM,
          PATH: `${tools}:${process.env.PATH ?? '/usr/bin:/bin'}`,
        },
        {
          stopGraceMs: STOP_GRACE_MS,
          host: cluster.node.ip,
          ports: [DEFAULT_SHOOT_POOL_PORT, (await freeLoopbackPorts(1))[0]!],
        },
      );
      note(`shoot pool starting on ${pool.url}; it boots and snapshots a template VM`);
      note(`TPM agent: one swtpm per instance with secrets, under ${tpmRoot}`);
    });

    const firstCommit = await repo.head();
    const first = await progress.step('push, deliver a signed webhook, build and apply', (note) =>
      pushAndFollow('0'.repeat(40), firstCommit, note),
    );
    const rollout = { timeoutMs: waitTimeoutMs, signal };
    const served = await progress.step(
      'roll out every instance on the node and ask each what it serves',
      async (note) => {
        note("the node pulls each nix:0 image from the builder's signed cache");
        const status = await waitUntilAvailable(() => reconciler!.status(flake), {
          ...rollout,
          note,
        });
        first.instances = instanceRows(status);
        // Read again: an instance with secrets gets its Deployment only once its TPM is
        // placed, after the apply the push followed.
        first.objects = await kubeObjects.list(namespace);
        return answerOnceReachable(
          'for every instance to answer over its Service',
          () => serveReport(kubeObjects, namespace),
          rollout,
        ).catch(async (error: Error) => {
          // What the servers logged says whether the request reached them.
          const logs = await instanceLogs(kubeObjects, namespace, ['web', 'api', 'dns'], 10);
          throw new Error(`${error.message}\n${formatLogs(logs)}`);
        });
      },
    );
    progress.print(formatPushReport(flake, namespace, first, served));

    const flakeRows = await progress.step(
      'kubectl get seedflakes: what runs where, from which commit',
      (note) => {
        note('the reconciler writes each SeedFlake status (Ready, Reconciling, Stalled)');
        return waitFor(
          `for SeedFlake ${seedFlake} to be Ready with generation ${first.generation}`,
          async () => {
            const resource = await seedFlakes.get(seedFlake);
            const ready = resource?.status?.conditions?.find((c) => c.type === 'Ready');
            return ready?.status === 'True' && resource?.status?.generation === first.generation
              ? [resource]
              : undefined;
          },
          { timeoutMs: waitTimeoutMs, signal, intervalMs: 250 },
        );
      },
    );
    progress.print(formatSeedFlakes(flakeRows));

    const registration = await progress.step(
      'add a flake through a SeedFlake, then remove it, restarting no service',
      async (note) => {
        const processes = () =>
          (['webhook', 'builder', 'reconciler'] as const).map(
            (name) => stack.service(name).process.child.pid,
          );
        const before = processes();
        const extraSecret = randomBytes(16).toString('hex');
        const read = readFlakeRegistry(
          `[{ name: extra, flake: "github:seed-up/extra", repository: seed-up/extra, secret: "${extraSecret}" }]`,
          'the extra flake',
          {},
        );
        if ('problems' in read) throw new Error(read.problems.join('\n'));
        const added = Date.now();
        const [name] = await applyFlakeRegistry(seedFlakes, read.entries, webhookSecrets);
        const hook = flakeHookId('github:seed-up/extra', extraSecret);
        const hookAnswers = (status: number) => async () =>
          (await pingHook(webhook.url, hook, extraSecret, signal)) === status ? true : undefined;
        const waiting = { timeoutMs: waitTimeoutMs, signal, intervalMs: 100 };
        await waitFor('for the webhook to serve the new SeedFlake', hookAnswers(200), waiting);
        const servedMs = Date.now() - added;
        note(`SeedFlake ${name} created: its hook answered a ping after ${servedMs} ms`);
        const awaiting = await waitFor(
          'for the reconciler to write its status',
          async () => {
            const ready = (await seedFlakes.get(name!))?.status?.conditions?.find(
              (c) => c.type === 'Ready',
            );
            return ready?.reason === 'AwaitingGeneration' ? ready.message : undefined;
          },
          waiting,
        );
        note(`its status: ${awaiting}`);
        const removed = Date.now();
        await seedFlakes.delete(name!);
        await waitFor('for the webhook to drop the deleted SeedFlake', hookAnswers(404), waiting);
        const droppedMs = Date.now() - removed;
        note(`SeedFlake ${name} deleted: its hook answered 404 after ${droppedMs} ms`);
        await waitFor(
          'for the reconciler to release the SeedFlake (its removal finalizer)',
          async () => ((await seedFlakes.get(name!)) === undefined ? true : undefined),
          waiting,
        );
        note(
          `the reconciler removed its flake and released the SeedFlake after ${Date.now() - removed} ms`,
        );
        const after = processes();
        if (after.join() !== before.join())
          throw new Error(`a service restarted: pids ${before.join(',')} → ${after.join(',')}`);
        note(`webhook, builder and reconciler kept their processes (${after.join(', ')})`);
        return { servedMs, droppedMs, status: awaiting };
      },
    );

    const secrets = await progress.step(
      "print the example's age recipient and decrypt a secret with its TPM in a VM",
      async (note) => {
        const [request] = await kubeObjects.tpmReports(namespace);
        if (!request) throw new Error('no instance of the example has seed.secrets');
        // The agent records the recipient before it places the TPM, so a Deployment that
        // rolled out has it.
        const tpm = placedTpm(request.report);
        if (!tpm)
          throw new Error(
            `the TPM of ${request.instance} is not placed: ${JSON.stringify(request.report)}`,
          );
        note(`${request.instance}'s TPM: swtpm on node ${tpm.node}, ${tpm.ctrlSocket}`);
        note(`seed keys ${flake} ${request.instance}: ${tpm.recipient}`);
        note('sops --encrypt on the host; seed-secrets install in QEMU with that swtpm');
        return decryptInVm(request.instance, tpm, path.join(workDir, 'secrets'));
      },
    );
    progress.print(formatSecretsReport(secrets));

    const change = await progress.step(
      `change one instance (${CHANGED_INSTANCE}: size s → m), push again and watch it roll out`,
      async (note) => {
        const podsBefore = await kubeObjects.instancePods(namespace, CHANGED_INSTANCE);
        const files = await exampleFlakeFiles();
        const commit = await repo.commit(
          { 'flake.nix': resizeWeb(files['flake.nix']!) },
          'web: size m',
        );
        const pushed = await pushAndFollow(firstCommit, commit, note);
        const { changed, unchanged } = changedDeployments(first.objects, pushed.objects);
        if (changed.join() !== CHANGED_INSTANCE) {
          throw new Error(
            `expected only Deployment ${CHANGED_INSTANCE} to change, but changed: ${changed.join(', ') || 'none'}`,
          );
        }
        const status = await waitUntilAvailable(() => reconciler!.status(flake), {
          ...rollout,
          note,
        });
        pushed.instances = instanceRows(status);
        // Recreate: the old pod is gone before the new one is Ready.
        const podsAfter = await waitFor(
          `for ${CHANGED_INSTANCE}'s old pod to go`,
          async () => {
            const pods = await kubeObjects.instancePods(namespace, CHANGED_INSTANCE);
            return pods.length === 1 && pods[0]!.ready ? pods : undefined;
          },
          rollout,
        );
        const ips = await kubeObjects.serviceIps(namespace);
        // kube-proxy learns the new pod's address a moment after it is Ready.
        const servedAfter = await answerOnceReachable(
          `for ${CHANGED_INSTANCE}'s Service to reach the new pod`,
          () => httpGet(`http://${ips.get(CHANGED_INSTANCE)}:8080/`),
          rollout,
        );
        return {
          ...pushed,
          instance: CHANGED_INSTANCE,
          changed,
          unchanged,
          podsBefore: podsBefore.map((pod) => pod.name),
          podsAfter: podsAfter.map((pod) => pod.name),
          servedAfter,
        };
      },
    );
    progress.print(formatChangeReport(first, change));

    const rollback = await progress.step(
      `roll the flake back to its first generation (seed rollback), resume it, and rebuild that commit (seed rebuild)`,
      async (note) => {
        const done = await rollBack(kubeConfig, reconciler!, EXAMPLE_SEEDFLAKE, '');
        if (done.generation !== first.generation)
          throw new Error(`rolled back to ${done.generation}, not to ${first.generation}`);
        note(`generation ${change.generation} → ${done.generation}, applied without a build`);
        await waitUntilAvailable(() => reconciler!.status(flake), { ...rollout, note });
        const suspended = await waitFor(
          `for SeedFlake ${EXAMPLE_SEEDFLAKE} to say it runs ${done.generation}, suspended`,
          async () => {
            const resource = await seedFlakes.get(EXAMPLE_SEEDFLAKE);
            const ready = resource?.status?.conditions?.find((c) => c.type === 'Ready');
            return ready?.reason === 'Suspended' && resource?.status?.generation === done.generation
              ? ready.message
              : undefined;
          },
          { timeoutMs: waitTimeoutMs, signal, intervalMs: 250 },
        );
        note(`suspended by ${done.by} (an Event RolledBack says so): ${suspended}`);
        const resumed = await setSuspended(kubeConfig, EXAMPLE_SEEDFLAKE, false, 'seed up');
        note(`seed resume: resumed by ${resumed.by}; the next push deploys again`);
        const rebuilt = await requestRebuild(kubeConfig, EXAMPLE_SEEDFLAKE, {
          commit: firstCommit,
          waitMs: waitTimeoutMs,
        });
        note(
          `seed rebuild --commit ${firstCommit.slice(0, 12)}: the webhook queued ${rebuilt.jobId}`,
        );
        const build = await followBuild(builds, rebuilt.jobId, note, {
          timeoutMs: waitTimeoutMs,
          signal,
          alive: () => stack.assertRunning(),
        });
        if (build.generation !== done.generation)
          throw new Error(
            `the rebuild made generation ${build.generation}, not ${done.generation}`,
          );
        note(
          `built again: generation ${build.generation} (${build.changed ? 'the reconciler wrote objects' : 'nothing to write: it runs already'})`,
        );
        return {
          generation: done.generation,
          by: done.by,
          rebuild: { jobId: rebuilt.jobId, changed: build.changed === true },
        };
      },
    );

    const statuses = await progress.step(
      'read the commit statuses the builder sent to the forge',
      (note) => {
        note('queued and building as a worker takes each build, success once it is applied');
        const sent = statusForge;
        return waitFor(
          "for the forge to have each push's final status",
          () =>
            Promise.resolve(
              [firstCommit, change.commit].every((commit) =>
                sent.received.some((s) => s.commit === commit && s.state === 'success'),
              )
                ? sent.received
                : undefined,
            ),
          { timeoutMs: waitTimeoutMs, signal, intervalMs: 100 },
        );
      },
    );
    progress.print(formatForgeStatuses(statuses));

    const shoot = await progress.step(
      'run a shoot from inside the pod of the instance with shoots enabled',
      async (note) => {
        const shootCaller = await kubeObjects.shootCaller(namespace);
        if (!shootCaller) throw new Error('no instance of the example enables shoots');
        note(
          `caller: ${shootCaller.instance}'s pod, proven by its projected token and IP; volumes ${shootCaller.volumes.map((v) => v.mountPoint).join(', ')}`,
        );
        const pool = stack.service('shoot-pool');
        note('waiting for the shoot pool to warm up (boot, snapshot and restore under QEMU)');
        await stack.ready(pool, waitTimeoutMs);
        // The pool listens once warm: let Prometheus see it before the shoot, so the
        // shoot lands in the dashboard's rates.
        await scrapedAgain(prometheus!, ['shoot-pool'], { timeoutMs: waitTimeoutMs, signal });
        note('shoot pool warm');
        const mountPoint = shootCaller.volumes[0]?.mountPoint;
        if (mountPoint === undefined) throw new Error(`${shootCaller.instance} mounts no volume`);
        const [pod] = await kubeObjects.instancePods(namespace, shootCaller.instance);
        if (!pod) throw new Error(`${shootCaller.instance} has no pod`);
        const command = [
          'sh',
          '-c',
          `echo "hello from a shoot of ${shootCaller.instance}"; uname -sr; ` +
            `echo "written in a shoot" > ${mountPoint}/${SHOOT_FILE}; ls ${mountPoint}`,
        ];
        // The instance's own client, to the URL its Deployment gave it: the shoot pool
        // knows the caller only by the pod's IP.
        note(`exec in pod ${pod.name} (${pod.ip}): seed-shoot ${command.join(' ')}`);
        const started = Date.now();
        const result = await kubeObjects.execInPod(namespace, pod.name, [
          'seed-shoot',
          '--timeout',
          '30000',
          '--',
          ...command,
        ]);
        if (result.exitCode !== 0) {
          throw new Error(`seed-shoot in the pod exited ${result.exitCode}: ${result.stderr}`);
        }
        const claim = shootCaller.volumes[0]!.claimName;
        const hostPath = path.join(await kubeObjects.claimHostPath(namespace, claim), SHOOT_FILE);
        const ips = await kubeObjects.serviceIps(namespace);
        return {
          ...result,
          durationMs: Date.now() - started,
          command,
          caller: shootCaller.instance,
          callerPod: pod.name,
          fileOnHost: await readFile(hostPath, 'utf8'),
          servedBack: await httpGet(`http://${ips.get(shootCaller.instance)}:8080/`),
        };
      },
    );
    progress.print(formatShootReport(shoot));

    const logs = await progress.step(
      "read each instance's log through the API server",
      async () => {
        const tails: Record<string, string[]> = {};
        for (const { name } of change.instances) {
          const [pod] = await kubeObjects.instancePods(namespace, name);
          tails[name] = pod ? await kubeObjects.logTail(namespace, pod.name, 3) : [];
        }
        return tails;
      },
    );
    progress.print(formatLogs(logs));

    const dashboard = await progress.step(
      'ask Prometheus every panel of the Grafana dashboard (deploy/grafana)',
      async () => {
        const scraping = prometheus!;
        // The clone used by the shoot is replaced: wait for the pool to be warm again,
        // then for every service's counters as they are now.
        await stack.ready(stack.service('shoot-pool'), waitTimeoutMs);
        await scrapedAgain(scraping, ['webhook', 'builder', 'reconciler', 'shoot-pool'], {
          timeoutMs: waitTimeoutMs,
          signal,
        });
        const window = `${Math.ceil((Date.now() - scrapedSince) / 1000) + 5}s`;
        const answers = await askDashboard(
          (expr) => scraping.query(expr),
          await dashboardQueries(),
          window,
        );
        const empty = answers.filter((answer) => answer.problem !== undefined);
        if (empty.length > 0) {
          const scrapes = Object.entries(await scraping.targetHealth()).map(
            ([job, health]) => `  ${job}: ${health}`,
          );
          throw new Error(
            `${empty.length} of ${answers.length} panel queries have no data:\n` +
              empty.map((a) => `  ${a.panel}: ${a.problem} (${a.expr})`).join('\n') +
              `\nthe services' last scrapes:\n${scrapes.join('\n')}`,
          );
        }
        return answers;
      },
    );
    progress.print(formatDashboard(dashboard));

    await options.whileRunning?.({
      flake,
      namespace,
      flakeDir: repo.dir,
      kubeconfigPath: kube.kubeconfigPath,
      redisUrl: redis.url,
      redisAdmin: { username: redis.admin.username, passwordFile: redis.admin.passwordFile },
      webhookUrl: webhook.url,
      builderUrl: builder.url,
      reconcilerAddress: stack.service('reconciler').grpcAddress!,
      operatorTlsDir: credentials.certificates.operator,
      builderTokenFile: credentials.builderTokenFile,
      shootStatusTokenFile: credentials.shootStatusTokenFile,
      shootUrl: stack.service('shoot-pool').url,
      prometheusUrl: prometheus!.url,
      logDir,
      delivery: { repository: REPOSITORY, branch: BRANCH, secret },
      nodeDir: cluster.node.dir,
      apiServerDir: kube.dir,
      builderNix,
    });
    return {
      flake,
      namespace,
      first,
      served,
      secrets,
      seedFlakes: flakeRows,
      registration,
      change,
      rollback,
      statuses,
      shoot,
      logs,
      dashboard,
    };
  } finally {
    reconciler?.close();
    await forge?.stop();
    options.write('==> stopping the stack\n');
    const problems = await stack.stop();
    // swtpm runs detached from the TPM agent, past the shoot pool's stop.
    await new VtpmStore({ root: tpmRoot, swtpm: 'swtpm', graceMs: 0, now: Date.now })
      .stopAll()
      .catch((error: Error) => problems.push(`swtpm under ${tpmRoot}: ${error.message}`));
    // Never rm -rf through a mount a crashed shoot pool may have left: that could reach
    // the volume's or the store's real folder.
    await removeUnmountedTree(workDir).catch((error: Error) =>
      problems.push(`left ${workDir} in place: ${error.message}`),
    );
    for (const problem of problems) options.write(`    while stopping: ${problem}\n`);
  }
}

/** Waits until Prometheus has scraped each job successfully twice more. */
async function scrapedAgain(
  prometheus: LocalPrometheus,
  jobs: readonly string[],
  options: { timeoutMs: number; signal: AbortSignal },
): Promise<void> {
  // Successful scrapes so far: `up` is 1 for each.
  const scrapes = async (job: string) =>
    (await prometheus.query(`sum_over_time(up{job="${job}"}[1h])`))[0]?.value ?? 0;
  const before = await Promise.all(jobs.map(scrapes));
  await waitFor(
    `Prometheus to scrape ${jobs.join(', ')} again`,
    async () => {
      const now = await Promise.all(jobs.map(scrapes));
      return now.every((count, i) => count >= before[i]! + 2) ? true : undefined;
    },
    { ...options, intervalMs: 250 },
  );
}

/** Polls the builder until the build ends, noting each state it passes through. */
async function followBuild(
  builds: BuilderApi,
  jobId: string,
  note: (text: string) => void,
  options: { timeoutMs: number; signal: AbortSignal; alive: () => void },
): Promise<BuildRecord> {
  let last = '';
  const started = Date.now();
  let lastNote = started;
  const build = await waitFor(
    `for build ${jobId}`,
    async () => {
      options.alive();
      // The builder answers `queued` for a job no worker has taken, so any error is real.
      const current = await builds.get(jobId);
      const elapsed = seconds(Date.now() - started);
      if (current.state !== last) {
        last = current.state;
        lastNote = Date.now();
        note(`build ${current.state} (${elapsed})`);
      } else if (Date.now() - lastNote >= STILL_WAITING_EVERY_MS) {
        lastNote = Date.now();
        note(`build still ${current.state} (${elapsed})`);
      }
      return FINAL_BUILD_STATES.has(current.state) ? current : undefined;
    },
    { ...options, intervalMs: 100 },
  );
  if (build.state !== 'succeeded') {
    const reason = build.error ? `${build.error.kind}: ${build.error.message}` : build.state;
    throw new Error(`build ${jobId} ${build.state}: ${reason}\n${build.log.join('\n')}`);
  }
  note(`phases: ${formatPhases(build.phases)}`);
  return build;
}

/** Deployments whose spec moved between two listings. */
function changedDeployments(
  before: readonly ObjectSummary[],
  after: readonly ObjectSummary[],
): { changed: string[]; unchanged: string[] } {
  const specs = new Map(before.filter((o) => o.kind === 'Deployment').map((o) => [o.name, o.spec]));
  const deployments = after.filter((o) => o.kind === 'Deployment');
  return {
    changed: deployments.filter((o) => specs.get(o.name) !== o.spec).map((o) => o.name),
    unchanged: deployments.filter((o) => specs.get(o.name) === o.spec).map((o) => o.name),
  };
}

/** The platform's CA and certificates, and a random token per HTTP API, in `dir`. */
async function platformCredentials(dir: string): Promise<{
  certificates: PlatformCertificates;
  builderTokenFile: string;
  shootStatusTokenFile: string;
}> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const token = async (name: string) => {
    const file = path.join(dir, name);
    await writeFile(file, randomBytes(32).toString('hex'), { mode: 0o600 });
    return file;
  };
  return {
    certificates: await createPlatformCertificates(dir),
    builderTokenFile: await token('builder-api.token'),
    shootStatusTokenFile: await token('shoot-status.token'),
  };
}

function instanceRows(status: FlakeStatus__Output): PushReport['instances'] {
  return status.instances.map(({ name, rollout, readyReplicas }) => ({
    name,
    rollout,
    readyReplicas,
  }));
}

/** What web and api answer over HTTP and dns over UDP and TCP, at their Service IPs. */
async function serveReport(kubeObjects: KubeObjects, namespace: string): Promise<ServedReport> {
  const ips = await kubeObjects.serviceIps(namespace);
  const ip = (name: string): string => {
    const found = ips.get(name);
    if (!found) throw new Error(`no Service ${name} in ${namespace}`);
    return found;
  };
  return {
    web: await httpGet(`http://${ip('web')}:8080/`),
    api: await httpGet(`http://${ip('api')}:9000/`),
    dns: {
      udp: await dnsQuery(ip('dns'), EXAMPLE_DNS_NAME, 'udp'),
      tcp: await dnsQuery(ip('dns'), EXAMPLE_DNS_NAME, 'tcp'),
    },
  };
}

/** The last lines of each instance's newest pod's log. */
async function instanceLogs(
  kubeObjects: KubeObjects,
  namespace: string,
  instances: string[],
  lines: number,
): Promise<Record<string, string[]>> {
  const tails: Record<string, string[]> = {};
  for (const name of instances) {
    const pod = (await kubeObjects.instancePods(namespace, name)).at(-1);
    tails[name] = pod
      ? await kubeObjects
          .logTail(namespace, pod.name, lines)
          .catch((error: Error) => [`(log unreadable: ${error.message})`])
      : [];
  }
  return tails;
}
