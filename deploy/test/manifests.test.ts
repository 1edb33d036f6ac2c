// deploy/manifests: structural invariants, then a server-side dry-run of every object
// against a real kube-apiserver (the same harness the reconciler's tests use).
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  ApiException,
  HttpMethod,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  ServerConfiguration,
  createConfiguration,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { REDIS_USERS, redisAclRules } from '@seed/builds-queue';
import { loadShootPoolConfig } from '@seed/shoot-pool';
import { installSeedFlakeCrd, startKubeApiServer, type KubeApiServer } from '@seed/testing';
import { parse } from 'yaml';
import { MANIFESTS_DIR, REPO_ROOT, loadManifests, manifestFiles, type Manifest } from './manifests';

const NAMESPACE = 'seed-system';
const CLUSTER_SCOPED = new Set([
  'Namespace',
  'RuntimeClass',
  'ClusterRole',
  'ClusterRoleBinding',
  'PersistentVolume',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
  'CustomResourceDefinition',
  'SeedFlake',
]);
const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet']);
const SERVICES = ['webhook', 'builder', 'reconciler', 'shoot-pool'] as const;
type ServiceName = (typeof SERVICES)[number];

interface EnvVar {
  name: string;
  value?: string;
}
interface Probe {
  httpGet?: { path: string; port: string | number };
  exec?: { command: string[] };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  env?: EnvVar[];
  ports?: { name?: string; containerPort: number; hostPort?: number }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { drop?: string[] };
  };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  runtimeClassName?: string;
  serviceAccountName?: string;
  terminationGracePeriodSeconds?: number;
  hostNetwork?: boolean;
  securityContext?: { runAsNonRoot?: boolean };
  containers: Container[];
  initContainers?: Container[];
  volumes?: {
    name: string;
    configMap?: { name: string };
    secret?: { secretName: string };
    persistentVolumeClaim?: { claimName: string };
  }[];
}
interface Workload extends Manifest {
  spec: { template: { metadata: { labels: Record<string, string> }; spec: PodSpec } };
}
interface ServiceSpec {
  selector: Record<string, string>;
  internalTrafficPolicy?: string;
  ports: { name: string; port: number; targetPort: string | number }[];
}

const manifests = loadManifests();
const workloads = manifests.filter((m): m is Workload => WORKLOAD_KINDS.has(m.kind));

function find<T extends Manifest = Manifest>(kind: string, name: string): T {
  const found = manifests.find((m) => m.kind === kind && m.metadata.name === name);
  if (!found) throw new Error(`no ${kind}/${name} in deploy/manifests`);
  return found as T;
}

function podSpec(name: string): PodSpec {
  const workload = workloads.find((w) => w.metadata.name === name);
  if (!workload) throw new Error(`no workload ${name}`);
  return workload.spec.template.spec;
}

function allContainers(spec: PodSpec): Container[] {
  return [...(spec.initContainers ?? []), ...spec.containers];
}

function env(container: Container): Map<string, string | undefined> {
  return new Map((container.env ?? []).map((v) => [v.name, v.value]));
}

/** The SEED_* variables an app's config.ts declares in its zod schema (with service-kit's Redis ones). */
function knownVariables(app: ServiceName): Set<string> {
  let source = readFileSync(path.join(REPO_ROOT, 'apps', app, 'src', 'config.ts'), 'utf8');
  if (source.includes('...redisEnv('))
    source += readFileSync(path.join(REPO_ROOT, 'packages/service-kit/src/redis-env.ts'), 'utf8');
  return new Set([...source.matchAll(/^\s+(SEED_[A-Z0-9_]+):/gm)].map((match) => match[1]!));
}

describe('deploy/manifests', () => {
  it('lists every manifest file in kustomization.yaml', () => {
    const onDisk = readdirSync(MANIFESTS_DIR)
      .filter((file) => file.endsWith('.yaml') && file !== 'kustomization.yaml')
      .sort();
    expect(
      manifestFiles()
        .map((file) => path.basename(file))
        .sort(),
    ).toEqual(onDisk);
  });

  it('puts every namespaced object in seed-system, and names every object once', () => {
    const keys = new Set<string>();
    for (const m of manifests) {
      const key = `${m.kind}/${m.metadata.namespace ?? ''}/${m.metadata.name}`;
      expect(keys.has(key)).toBe(false);
      keys.add(key);
      if (CLUSTER_SCOPED.has(m.kind)) expect(m.metadata.namespace).toBeUndefined();
      else expect({ key, namespace: m.metadata.namespace }).toEqual({ key, namespace: NAMESPACE });
    }
    expect(find('Namespace', NAMESPACE)).toBeDefined();
  });

  it('has a workload for every service, Redis, and the kata RuntimeClass', () => {
    expect(workloads.map((w) => `${w.kind}/${w.metadata.name}`).sort()).toEqual([
      'DaemonSet/shoot-pool',
      'Deployment/builder',
      'Deployment/reconciler',
      'Deployment/webhook',
      'StatefulSet/redis',
    ]);
    expect(find('RuntimeClass', 'kata')).toMatchObject({ handler: 'kata' });
  });

  it('gives every container resource requests and a memory limit, and long-running ones probes', () => {
    for (const w of workloads) {
      const spec = w.spec.template.spec;
      for (const c of allContainers(spec)) {
        const where = `${w.metadata.name}/${c.name}`;
        expect({ where, cpu: c.resources?.requests?.cpu !== undefined }).toEqual({
          where,
          cpu: true,
        });
        expect({ where, memory: c.resources?.requests?.memory !== undefined }).toEqual({
          where,
          memory: true,
        });
        expect({ where, limit: c.resources?.limits?.memory !== undefined }).toEqual({
          where,
          limit: true,
        });
      }
      for (const c of spec.containers) {
        expect(c.livenessProbe).toBeDefined();
        expect(c.readinessProbe).toBeDefined();
      }
    }
  });

  it('probes /healthz for liveness and /readyz for readiness in every Seed service', () => {
    for (const app of SERVICES) {
      const [container] = podSpec(app).containers;
      expect(container?.livenessProbe?.httpGet?.path).toBe('/healthz');
      expect(container?.readinessProbe?.httpGet?.path).toBe('/readyz');
    }
  });

  it('runs every Seed service from its operator-built image', () => {
    for (const app of SERVICES) {
      for (const c of allContainers(podSpec(app))) expect(c.image).toBe(`seed/${app}:dev`);
    }
  });

  it('sets only SEED_* variables the service reads in its config.ts', () => {
    for (const app of SERVICES) {
      const known = knownVariables(app);
      expect(known.size).toBeGreaterThan(3);
      for (const c of podSpec(app).containers) {
        const unknown = [...env(c).keys()].filter((n) => n.startsWith('SEED_') && !known.has(n));
        expect({ app, unknown }).toEqual({ app, unknown: [] });
      }
    }
  });

  it('refers only to ServiceAccounts, ConfigMaps, Secrets and claims it defines', () => {
    for (const w of workloads) {
      const spec = w.spec.template.spec;
      if (spec.serviceAccountName) find('ServiceAccount', spec.serviceAccountName);
      for (const volume of spec.volumes ?? []) {
        if (volume.configMap) find('ConfigMap', volume.configMap.name);
        if (volume.secret) find('Secret', volume.secret.secretName);
        if (volume.persistentVolumeClaim) {
          find('PersistentVolumeClaim', volume.persistentVolumeClaim.claimName);
        }
      }
      for (const c of allContainers(spec)) {
        const names = new Set((spec.volumes ?? []).map((v) => v.name));
        for (const mount of c.volumeMounts ?? []) {
          const claimTemplates = (w.spec as { volumeClaimTemplates?: Manifest[] })
            .volumeClaimTemplates;
          const fromTemplate = claimTemplates?.some((t) => t.metadata.name === mount.name) ?? false;
          expect({ mount: mount.name, defined: names.has(mount.name) || fromTemplate }).toEqual({
            mount: mount.name,
            defined: true,
          });
        }
      }
    }
    for (const binding of manifests.filter((m) => m.kind === 'ClusterRoleBinding')) {
      const { roleRef, subjects } = binding as unknown as {
        roleRef: { name: string };
        subjects: { kind: string; name: string; namespace: string }[];
      };
      find('ClusterRole', roleRef.name);
      for (const subject of subjects) {
        expect(subject.namespace).toBe(NAMESPACE);
        find(subject.kind, subject.name);
      }
    }
  });

  it('selects a workload with every Service, on ports its containers declare', () => {
    for (const service of manifests.filter((m) => m.kind === 'Service')) {
      const spec = service.spec as ServiceSpec;
      // The leader label is put on a reconciler pod at run time by the replica that leads.
      const targets = workloads.filter((w) =>
        Object.entries(spec.selector).every(
          ([key, value]) =>
            (key === 'seed.loom.farm/leader' && w.metadata.name === 'reconciler') ||
            w.spec.template.metadata.labels[key] === value,
        ),
      );
      expect({ service: service.metadata.name, targets: targets.length }).toEqual({
        service: service.metadata.name,
        targets: 1,
      });
      const ports = targets[0]!.spec.template.spec.containers.flatMap((c) => c.ports ?? []);
      for (const port of spec.ports) {
        const found = ports.some((p) =>
          typeof port.targetPort === 'number'
            ? p.containerPort === port.targetPort
            : p.name === port.targetPort,
        );
        expect({ service: service.metadata.name, port: port.name, found }).toEqual({
          service: service.metadata.name,
          port: port.name,
          found: true,
        });
      }
    }
  });

  it('wires the services together on their documented ports', () => {
    const webhook = find<Manifest & { spec: ServiceSpec }>('Service', 'webhook').spec;
    expect(webhook.ports).toEqual([
      expect.objectContaining({ port: 80, targetPort: 'http' }) as unknown,
    ]);
    expect(podSpec('webhook').containers[0]?.ports).toEqual([
      { name: 'http', containerPort: 8080 },
    ]);

    const reconciler = find<Manifest & { spec: ServiceSpec }>('Service', 'reconciler').spec;
    expect(reconciler.ports.map((p) => [p.name, p.port])).toEqual([
      ['grpc', 9090],
      ['http', 8082],
    ]);

    const builderEnv = env(podSpec('builder').containers[0]!);
    expect(builderEnv.get('SEED_RECONCILER_ADDRESS')).toBe('reconciler:9090');
    for (const app of ['webhook', 'builder'] as const) {
      expect(env(podSpec(app).containers[0]!).get('SEED_REDIS_URL')).toBe('redis://redis:6379');
    }

    const shootEnv = env(podSpec('shoot-pool').containers[0]!);
    const reconcilerEnv = env(podSpec('reconciler').containers[0]!);
    expect(reconcilerEnv.get('SEED_SHOOT_POOL_PORT')).toBe(shootEnv.get('SEED_SHOOT_PORT'));
    expect(shootEnv.get('SEED_SHOOT_PORT')).toBe('7070');
  });

  it("runs the shoot pool under Cloud Hypervisor, in a configuration the pool's config accepts", () => {
    // Variables from the downward API (the node's name) get a stand-in value, the status
    // token (a mounted Secret) a stand-in file.
    const vars = Object.fromEntries(
      [...env(podSpec('shoot-pool').containers[0]!)].map(([name, value]) => [
        name,
        value ?? 'from-the-downward-api',
      ]),
    );
    const tokenDir = mkdtempSync(path.join(tmpdir(), 'seed-deploy-'));
    const tokenFile = path.join(tokenDir, 'token');
    writeFileSync(tokenFile, 'a'.repeat(64));
    vars.SEED_SHOOT_STATUS_TOKEN_FILE = tokenFile;
    try {
      expect(loadShootPoolConfig(vars).hypervisor).toEqual({
        kind: 'cloud-hypervisor',
        binary: 'cloud-hypervisor',
        virtiofsdBinary: '/usr/libexec/virtiofsd',
        vmUids: { first: 2_100_000_000, count: 65_536 },
      });
    } finally {
      rmSync(tokenDir, { recursive: true, force: true });
    }
  });

  it('gives the builder time to drain its builds (60 s grace + 5 s) before SIGKILL', () => {
    const spec = podSpec('builder');
    const grace = Number(env(spec.containers[0]!).get('SEED_SHUTDOWN_GRACE_MS') ?? 60_000);
    expect(spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(70);
    expect(spec.terminationGracePeriodSeconds! * 1000).toBeGreaterThan(grace + 5_000);
  });

  it('builds through a nix-daemon beside the builder, which alone writes the store', () => {
    const spec = podSpec('builder');
    const [builder, daemon] = spec.containers;
    expect(daemon?.name).toBe('nix-daemon');
    const store = '/var/lib/seed/store';
    expect(builder!.volumeMounts).toEqual(
      expect.arrayContaining([{ name: 'nix', mountPath: store, readOnly: true }]),
    );
    expect(daemon!.volumeMounts).toEqual(
      expect.arrayContaining([{ name: 'nix', mountPath: store }]),
    );
    expect(daemon!.command).toEqual(['nix-daemon', '--store', store]);
    const socket = env(daemon!).get('NIX_DAEMON_SOCKET_PATH');
    expect(env(builder!).get('SEED_NIX_STORE')).toBe(`unix://${socket}?root=${store}`);
    // The daemon's settings are deploy/nix-daemon.conf's, with the default binary cache.
    const settings = (text: string) =>
      text
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line !== '' && !line.startsWith('#') && !line.startsWith('substituters'));
    const conf = find('ConfigMap', 'seed-nix-daemon-conf').data as Record<string, string>;
    expect(settings(conf['nix.conf']!)).toEqual(
      settings(readFileSync(path.join(REPO_ROOT, 'deploy/nix-daemon.conf'), 'utf8')),
    );
    expect(settings(conf['nix.conf']!)).toEqual(
      expect.arrayContaining(['sandbox = true', 'build-users-group = nixbld', 'trusted-users =']),
    );
  });

  it("mounts each part's certificate and API token from Secrets cert-manager can write", () => {
    const mounted = (app: ServiceName, variable: string) => {
      const spec = podSpec(app);
      const container = spec.containers[0]!;
      const file = env(container).get(variable)!;
      const mount = container.volumeMounts!.find(
        (m) => file === m.mountPath || file.startsWith(`${m.mountPath}/`),
      )!;
      const secret = spec.volumes!.find((v) => v.name === mount.name)!.secret!.secretName;
      return { file, mountPath: mount.mountPath, secret: find('Secret', secret) };
    };
    for (const [app, name] of [
      ['reconciler', 'seed-reconciler-tls'],
      ['builder', 'seed-builder-tls'],
    ] as const) {
      const { file, mountPath, secret } = mounted(app, 'SEED_TLS_DIR');
      expect({ app, file, name: secret.metadata.name }).toEqual({ app, file: mountPath, name });
      expect((secret as Manifest & { type: string }).type).toBe('kubernetes.io/tls');
      const data = secret.stringData as Record<string, string>;
      expect(Object.keys(data).sort()).toEqual(['ca.crt', 'tls.crt', 'tls.key']);
      for (const value of Object.values(data)) expect(value).toMatch(/^REPLACE-ME/);
    }
    for (const [app, variable, name] of [
      ['builder', 'SEED_BUILDER_API_TOKEN_FILE', 'seed-builder-api-token'],
      ['shoot-pool', 'SEED_SHOOT_STATUS_TOKEN_FILE', 'seed-shoot-status-token'],
    ] as const) {
      const { file, mountPath, secret } = mounted(app, variable);
      expect({ app, file, name: secret.metadata.name }).toEqual({
        app,
        file: `${mountPath}/token`,
        name,
      });
      // A placeholder the services refuse (tokens have at least 32 characters).
      expect((secret.stringData as Record<string, string>).token).toBe('REPLACE-ME');
    }
  });

  it('signs the builder binary cache with a Secret key and serves it to nodes on a node port', () => {
    const spec = podSpec('builder');
    const container = spec.containers[0]!;
    const vars = env(container);
    const mountOf = (volume: string) =>
      container.volumeMounts!.find((m) => m.name === volume)!.mountPath;
    const volumeOf = (file: string) => {
      const mount = container.volumeMounts!.find((m) => file.startsWith(`${m.mountPath}/`));
      return spec.volumes!.find((v) => v.name === mount?.name);
    };

    const keyFile = vars.get('SEED_BINARY_CACHE_SECRET_KEY_FILE')!;
    const keyVolume = volumeOf(keyFile)!;
    expect(keyVolume.secret?.secretName).toBe('seed-builder-cache-key');
    expect(path.dirname(keyFile)).toBe(mountOf(keyVolume.name));
    const secret = find('Secret', 'seed-builder-cache-key').stringData as Record<string, string>;
    expect(Object.keys(secret)).toEqual([path.basename(keyFile)]);
    expect(secret[path.basename(keyFile)]).toMatch(/^REPLACE-ME/); // no working default

    const cacheDir = vars.get('SEED_BINARY_CACHE_DIR')!;
    expect(mountOf('cache')).toBe(cacheDir);
    const cacheVolume = spec.volumes!.find((v) => v.name === 'cache')!;
    expect(cacheVolume.persistentVolumeClaim?.claimName).toBe('builder-cache');
    // The builder's store is its own volume, never the node's /nix.
    expect(spec.volumes!.find((v) => v.name === 'nix')!.persistentVolumeClaim).toBeDefined();

    const nodePort = find<Manifest & { spec: ServiceSpec & { type: string } }>(
      'Service',
      'builder-cache',
    ).spec;
    expect(nodePort).toMatchObject({
      type: 'NodePort',
      ports: [expect.objectContaining({ targetPort: 'http', nodePort: 30081 }) as unknown],
    });
  });

  it('runs Redis with appendonly and noeviction, on a claim', () => {
    const redis = find<Workload>('StatefulSet', 'redis');
    const args = redis.spec.template.spec.containers[0] as Container & { args: string[] };
    expect(args.args.join(' ')).toContain('--appendonly yes');
    expect(args.args.join(' ')).toContain('--maxmemory-policy noeviction');
    expect((redis.spec as { volumeClaimTemplates?: unknown[] }).volumeClaimTemplates).toHaveLength(
      1,
    );
  });

  it("gives Redis one ACL user per service, with the builds queue's rules and its own password", () => {
    const acl = find<Manifest & { data: Record<string, string> }>('ConfigMap', 'redis-acl');
    const users = acl.data
      .users!.trim()
      .split('\n')
      .map((line) => line.split(' '));
    expect(users.map(([name, key]) => [name, key])).toEqual([
      [REDIS_USERS.webhook, 'webhook'],
      [REDIS_USERS.builder, 'builder'],
      ['seed-admin', 'admin'],
    ]);
    for (const [index, service] of (['webhook', 'builder'] as const).entries()) {
      expect(users[index]!.slice(2)).toEqual(redisAclRules(service));
      const spec = podSpec(service);
      const vars = env(spec.containers[0]!);
      expect(vars.get('SEED_REDIS_USERNAME')).toBe(REDIS_USERS[service]);
      expect(vars.get('SEED_REDIS_PASSWORD_FILE')).toBe('/run/secrets/redis/password');
      // The pod holds its own password only.
      const volume = spec.volumes?.find((v) => v.name === 'redis-password');
      expect(volume?.secret).toMatchObject({
        secretName: 'seed-redis-passwords',
        items: [{ key: service, path: 'password' }],
      });
    }
    const redis = podSpec('redis');
    expect(redis.initContainers?.[0]?.volumeMounts?.map((m) => m.mountPath)).toEqual([
      '/acl',
      '/etc/redis-acl',
      '/run/secrets/redis',
    ]);
    expect((redis.containers[0] as Container & { args: string[] }).args.join(' ')).toContain(
      '--aclfile /acl/users.acl',
    );
    expect(acl.data['render.sh']).toContain("echo 'user default off resetpass ~* &* +@all'");
  });

  it('serves the shoot pool node-locally on the host network', () => {
    const service = find<Manifest & { spec: ServiceSpec }>('Service', 'shoot-pool').spec;
    expect(service.internalTrafficPolicy).toBe('Local');
    const spec = podSpec('shoot-pool');
    expect(spec.hostNetwork).toBe(true);
    expect(spec.containers[0]?.securityContext?.privileged).toBe(true);
  });

  it('runs everything but the shoot pool and the nix-daemon unprivileged, as non-root, without capabilities', () => {
    for (const w of workloads.filter((w) => w.metadata.name !== 'shoot-pool')) {
      const spec = w.spec.template.spec;
      expect({ workload: w.metadata.name, nonRoot: spec.securityContext?.runAsNonRoot }).toEqual({
        workload: w.metadata.name,
        nonRoot: true,
      });
      for (const c of allContainers(spec).filter((c) => c.name !== 'nix-daemon')) {
        expect(c.securityContext).toMatchObject({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        });
        expect(c.securityContext?.privileged).toBeUndefined();
        expect(c.ports?.some((p) => p.hostPort !== undefined) ?? false).toBe(false);
      }
    }
  });

  it("gives the builder's nix-daemon root and the sandbox's capabilities only, inside a Kata VM", () => {
    const spec = podSpec('builder');
    expect(spec.runtimeClassName).toBe('kata');
    const daemon = spec.containers.find((c) => c.name === 'nix-daemon')!;
    expect(daemon.securityContext).toMatchObject({
      runAsUser: 0,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: {
        drop: ['ALL'],
        add: [
          'CHOWN',
          'DAC_OVERRIDE',
          'FOWNER',
          'KILL',
          'SETGID',
          'SETUID',
          'SYS_ADMIN',
          'SYS_CHROOT',
        ],
      },
    });
    expect(daemon.securityContext?.privileged).toBeUndefined();
  });

  it('closes seed-system: everything denied but the paths docs/security.md lists', () => {
    interface Peer {
      podSelector?: { matchLabels?: Record<string, string> };
      ipBlock?: { cidr: string };
    }
    interface Policy extends Manifest {
      spec: {
        podSelector: { matchLabels?: Record<string, string> };
        policyTypes: string[];
        ingress?: { from?: Peer[] }[];
        egress?: { to?: Peer[] }[];
      };
    }
    const policy = (name: string) => find<Policy>('NetworkPolicy', name).spec;
    const sources = (name: string) =>
      policy(name).ingress!.flatMap((rule) =>
        (rule.from ?? []).map((peer) => peer.podSelector?.matchLabels?.['app.kubernetes.io/name']),
      );
    expect(policy('seed.default-deny')).toEqual({
      podSelector: {},
      policyTypes: ['Ingress', 'Egress'],
    });
    // Applied before any workload, so nothing ever runs in an open namespace.
    const files = manifestFiles().map((file) => path.basename(file));
    expect(files.indexOf('network-policy.yaml')).toBeLessThan(files.indexOf('redis.yaml'));
    expect(policy('webhook').ingress).toEqual([{ ports: [{ port: 'http', protocol: 'TCP' }] }]);
    expect(sources('redis')).toEqual(['webhook', 'builder']);
    expect(sources('reconciler')).toEqual(['builder', 'cli']);
    expect(policy('redis').policyTypes).toEqual(['Ingress']);
    expect(policy('redis').egress).toBeUndefined();
    for (const app of ['webhook', 'reconciler', 'builder']) {
      expect(policy(app).podSelector.matchLabels).toEqual({ 'app.kubernetes.io/name': app });
    }
  });

  it('grants the reconciler exactly the ClusterRole verified in docs/reconciler.md', () => {
    const doc = readFileSync(path.join(REPO_ROOT, 'docs', 'reconciler.md'), 'utf8');
    const block = /```yaml\n(apiVersion: rbac[\s\S]*?kind: ClusterRole[\s\S]*?)```/.exec(doc);
    expect(block).not.toBeNull();
    const documented = parse(block![1]!) as { rules: unknown };
    expect(find('ClusterRole', 'seed-reconciler').rules).toEqual(documented.rules);
  });

  it('gives the builder no API access, the webhook SeedFlake reads, the shoot pool token reviews, reads and TPM requests', () => {
    const bound = manifests
      .filter((m) => m.kind === 'ClusterRoleBinding' || m.kind === 'RoleBinding')
      .flatMap((m) => (m as unknown as { subjects: { name: string }[] }).subjects)
      .map((s) => s.name)
      .sort();
    // The reconciler twice: its ClusterRole, and its leader-election Role in seed-system.
    expect(bound).toEqual([
      'seed-reconciler',
      'seed-reconciler',
      'seed-shoot-pool',
      'seed-webhook',
    ]);
    const leaseRole = find('Role', 'seed-reconciler-leader-election');
    expect(leaseRole.metadata.namespace).toBe(NAMESPACE);
    expect(find('ServiceAccount', 'seed-builder').automountServiceAccountToken).toBe(false);
    expect(find('ClusterRole', 'seed-webhook').rules).toEqual([
      { apiGroups: ['seed.loom.farm'], resources: ['seedflakes'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['seed.loom.farm'], resources: ['seedflakes/status'], verbs: ['patch'] },
    ]);
    const rules = find('ClusterRole', 'seed-shoot-pool').rules as {
      resources: string[];
      verbs: string[];
    }[];
    // It creates TokenReviews (answered, never stored) and gets single objects: no watch,
    // and no write but its TPM agent's list and patch of ConfigMaps (TPM requests only:
    // admission.yaml's seed-node-agent-writes-only-tpm-requests).
    for (const rule of rules) {
      const expected = rule.resources.includes('tokenreviews')
        ? ['create']
        : rule.resources.includes('configmaps')
          ? ['list', 'patch']
          : ['get'];
      expect({ resources: rule.resources, verbs: rule.verbs }).toEqual({
        resources: rule.resources,
        verbs: expected,
      });
    }
  });

  it("reads each SeedFlake's webhook secret from the mounted webhook Secret", () => {
    const seedFlakes = manifests.filter((m) => m.kind === 'SeedFlake') as (Manifest & {
      spec: { secretKey: string };
    })[];
    const container = podSpec('webhook').containers[0]!;
    const secret = find('Secret', 'seed-webhook-secrets');
    const keys = Object.keys(secret.stringData as Record<string, string>);
    const mount = container.volumeMounts!.find((m) => m.name === 'secrets')!;
    expect(env(container).get('SEED_WEBHOOK_SECRETS_DIR')).toBe(mount.mountPath);
    expect(env(container).has('SEED_FLAKES_FILE')).toBe(false);
    expect(seedFlakes.length).toBeGreaterThan(0);
    for (const flake of seedFlakes) expect(keys).toContain(flake.spec.secretKey);
    for (const value of Object.values(secret.stringData as Record<string, string>)) {
      expect(value).toMatch(/^REPLACE-ME/);
    }
  });
});

describe('deploy/manifests against a real API server', () => {
  let api: KubeApiServer;
  let client: KubernetesObjectApi;
  // The object exactly as written: KubernetesObjectApi serializes through its typed models,
  // which drop unknown fields (a typo) before the API server could refuse them.
  let rawBody: string | undefined;

  const dryRunApply = async (object: Manifest): Promise<KubernetesObject> => {
    rawBody = JSON.stringify(object);
    try {
      return await client.patch(
        object,
        undefined,
        'All',
        'seed-deploy-test',
        true,
        PatchStrategy.ServerSideApply,
      );
    } finally {
      rawBody = undefined;
    }
  };

  beforeAll(async () => {
    api = await startKubeApiServer();
    const config = new KubeConfig();
    config.loadFromFile(api.kubeconfigPath);
    // KubernetesObjectApi.makeApiClient, plus: send the object as written, and
    // fieldValidation=Strict so the API server refuses unknown fields instead of dropping them.
    client = new KubernetesObjectApi(
      createConfiguration({
        baseServer: new ServerConfiguration(config.getCurrentCluster()!.server, {}),
        authMethods: { default: config },
        promiseMiddleware: [
          {
            pre: (context) => {
              context.setQueryParam('fieldValidation', 'Strict');
              if (rawBody !== undefined && context.getHttpMethod() === HttpMethod.PATCH) {
                context.setBody(rawBody);
              }
              return Promise.resolve(context);
            },
            post: (response) => Promise.resolve(response),
          },
        ],
      }),
    );
    // Dry-run objects of a namespace need the namespace, and a SeedFlake its CRD: these
    // are the only real writes.
    await client.create(find('Namespace', NAMESPACE));
    await installSeedFlakeCrd(api);
  });

  afterAll(async () => {
    await api?.stop();
  });

  it('accepts every object in a server-side apply dry-run', async () => {
    const refused: string[] = [];
    for (const m of manifests) {
      try {
        await dryRunApply(m);
      } catch (error) {
        const body = error instanceof ApiException ? String(error.body) : String(error);
        refused.push(`${m.kind}/${m.metadata.name}: ${body}`);
      }
    }
    expect(refused).toEqual([]);
  });

  it('would refuse a broken object (the dry-run validates)', async () => {
    const broken = structuredClone(
      find<Manifest & { spec: Record<string, unknown> }>('Deployment', 'reconciler'),
    );
    broken.spec.replicaz = 1;
    await expect(dryRunApply(broken)).rejects.toThrow(/replicaz/);
  });

  it('stored nothing but the Namespace and the CRD', async () => {
    const list = await client.list('apps/v1', 'Deployment', NAMESPACE);
    expect(list.items).toEqual([]);
    await expect(
      client.read({
        apiVersion: 'node.k8s.io/v1',
        kind: 'RuntimeClass',
        metadata: { name: 'kata' },
      }),
    ).rejects.toThrow();
  });
});
