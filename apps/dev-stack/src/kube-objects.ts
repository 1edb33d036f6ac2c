import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import {
  AppsV1Api,
  CoreV1Api,
  Exec,
  KubeConfig,
  type V1Deployment,
  type V1Status,
} from '@kubernetes/client-node';
import {
  ENV_SHOOT_URL,
  LABEL_INSTANCE,
  KATA_MEMORY_ANNOTATION,
  KATA_VCPUS_ANNOTATION,
  LABEL_MANAGED_BY,
  MANAGED_BY_SEED,
} from '@seed/k8s-model';
import { LABEL_TPM, TPM_KEYS, TPM_REQUEST, readTpmReport, type TpmReport } from '@seed/contracts';

/** One object Seed created, as `seed up` prints it. */
export interface ObjectSummary {
  kind: 'Deployment' | 'Service' | 'PersistentVolumeClaim' | 'ConfigMap';
  name: string;
  /**
   * Digest of the object's spec (a ConfigMap's data): what the instance runs, whatever
   * else (its hash annotation, a Service) changed with it.
   */
  spec: string;
  detail: string;
}

/** A volume the shoot caller declares, as a pod would mount its PVC. */
export interface CallerVolume {
  claimName: string;
  mountPoint: string;
}

const SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY_SEED}`;

function digest(value: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify(value ?? null))
    .digest('hex')
    .slice(0, 10);
}

function deploymentDetail(deployment: V1Deployment): string {
  const template = deployment.spec?.template;
  const sizing = template?.metadata?.annotations ?? {};
  const vcpus = sizing[KATA_VCPUS_ANNOTATION] ?? '?';
  const memory = sizing[KATA_MEMORY_ANNOTATION] ?? '?';
  return `${vcpus} vCPU, ${memory} MiB; ${template?.spec?.containers[0]?.image ?? '-'}`;
}

/** A pod of an instance, as `seed up` reports it. */
export interface InstancePod {
  name: string;
  ip: string;
  phase: string;
  ready: boolean;
  createdAt: Date;
  deleting: boolean;
}

/** Reads what the reconciler wrote, straight from the API server, as an operator would. */
export class KubeObjects {
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;
  private readonly exec: Exec;

  constructor(kubeconfigPath: string) {
    const config = new KubeConfig();
    config.loadFromFile(kubeconfigPath);
    this.core = config.makeApiClient(CoreV1Api);
    this.apps = config.makeApiClient(AppsV1Api);
    this.exec = new Exec(config);
  }

  /** The ClusterIP of each Seed Service in the namespace, by name. */
  async serviceIps(namespace: string): Promise<Map<string, string>> {
    const services = await this.core.listNamespacedService({ namespace, labelSelector: SELECTOR });
    return new Map(services.items.map((s) => [s.metadata!.name!, s.spec?.clusterIP ?? '']));
  }

  /** The pods of one instance, oldest first. */
  async instancePods(namespace: string, instance: string): Promise<InstancePod[]> {
    const pods = await this.core.listNamespacedPod({
      namespace,
      labelSelector: `${SELECTOR},${LABEL_INSTANCE}=${instance}`,
    });
    return pods.items
      .map((pod) => ({
        name: pod.metadata!.name!,
        ip: pod.status?.podIP ?? '',
        phase: pod.status?.phase ?? 'Unknown',
        ready:
          pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
        createdAt: new Date(pod.metadata!.creationTimestamp!),
        deleting: pod.metadata?.deletionTimestamp !== undefined,
      }))
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  }

  /** The last lines a pod's container wrote (its log, through the API server). */
  async logTail(namespace: string, pod: string, lines: number): Promise<string[]> {
    const log = await this.core.readNamespacedPodLog({ namespace, name: pod, tailLines: lines });
    return log.split('\n').filter((line) => line !== '');
  }

  /** The host folder of a bound claim's volume (the host-path provisioner's). */
  async claimHostPath(namespace: string, claimName: string): Promise<string> {
    const claim = await this.core.readNamespacedPersistentVolumeClaim({
      namespace,
      name: claimName,
    });
    const volume = await this.core.readPersistentVolume({ name: claim.spec!.volumeName! });
    const hostPath = volume.spec?.hostPath?.path;
    if (!hostPath) throw new Error(`volume of claim ${claimName} has no host path`);
    return hostPath;
  }

  /**
   * Runs a command in a pod's container through the API server and the kubelet (the exec
   * subresource), as `kubectl exec` does.
   */
  async execInPod(
    namespace: string,
    pod: string,
    command: string[],
  ): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    const collect = (): { stream: Writable; text: () => string } => {
      const chunks: Buffer[] = [];
      return {
        stream: new Writable({
          write(chunk: Buffer, _encoding, done) {
            chunks.push(chunk);
            done();
          },
        }),
        text: () => Buffer.concat(chunks).toString('utf8'),
      };
    };
    const stdout = collect();
    const stderr = collect();
    // The status callback ends a normal run; a broken stream ends it without one.
    const status = await new Promise<V1Status>((resolve, reject) => {
      const connecting = this.exec.exec(
        namespace,
        pod,
        '',
        command,
        stdout.stream,
        stderr.stream,
        null,
        false,
        resolve,
      );
      connecting.then((socket) => socket.on('error', reject), reject);
    });
    const exitCode =
      status.status === 'Success'
        ? 0
        : Number(status.details?.causes?.find((c) => c.reason === 'ExitCode')?.message ?? 1);
    return { exitCode, stdout: stdout.text(), stderr: stderr.text() };
  }

  /** Every Seed object in the namespace, by kind then name. */
  async list(namespace: string): Promise<ObjectSummary[]> {
    const query = { namespace, labelSelector: SELECTOR };
    const [deployments, services, claims, configMaps] = await Promise.all([
      this.apps.listNamespacedDeployment(query),
      this.core.listNamespacedService(query),
      this.core.listNamespacedPersistentVolumeClaim(query),
      this.core.listNamespacedConfigMap(query),
    ]);
    const objects: ObjectSummary[] = [
      ...deployments.items.map((d) => ({
        kind: 'Deployment' as const,
        name: d.metadata!.name!,
        spec: digest(d.spec),
        detail: deploymentDetail(d),
      })),
      ...services.items.map((s) => ({
        kind: 'Service' as const,
        name: s.metadata!.name!,
        spec: digest(s.spec),
        detail: (s.spec?.ports ?? []).map((p) => `${p.name}:${p.port}/${p.protocol}`).join(', '),
      })),
      ...claims.items.map((c) => ({
        kind: 'PersistentVolumeClaim' as const,
        name: c.metadata!.name!,
        spec: digest(c.spec),
        detail: `${c.spec?.resources?.requests?.storage ?? '-'}, never deleted by Seed`,
      })),
      ...configMaps.items.map((m) => ({
        kind: 'ConfigMap' as const,
        name: m.metadata!.name!,
        spec: digest(m.data),
        detail: `keys ${Object.keys(m.data ?? {}).join(', ')}`,
      })),
    ];
    return objects.sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
  }

  /**
   * The TPM requests of the flake's instances with secrets, with what their node's agent
   * reported in them (`seed keys` reads the same report).
   */
  async tpmReports(namespace: string): Promise<{ instance: string; report: TpmReport }[]> {
    const requests = await this.core.listNamespacedConfigMap({
      namespace,
      labelSelector: `${SELECTOR},${LABEL_TPM}=${TPM_REQUEST}`,
    });
    return requests.items
      .map((request) => ({
        instance: request.data?.[TPM_KEYS.instance] ?? '',
        report: readTpmReport(request.data),
      }))
      .sort((a, b) => a.instance.localeCompare(b.instance));
  }

  /**
   * The instance whose pod may shoot (its Deployment sets SEED_SHOOT_URL) and the volumes it
   * mounts from PVCs: what the shoot pool's caller lookup reads from a running pod.
   */
  async shootCaller(
    namespace: string,
  ): Promise<{ instance: string; volumes: CallerVolume[] } | undefined> {
    const deployments = await this.apps.listNamespacedDeployment({
      namespace,
      labelSelector: SELECTOR,
    });
    for (const deployment of deployments.items) {
      const pod = deployment.spec?.template.spec;
      const container = pod?.containers[0];
      if (!container?.env?.some((variable) => variable.name === ENV_SHOOT_URL)) continue;
      const claims = new Map(
        (pod?.volumes ?? []).flatMap((volume) =>
          volume.persistentVolumeClaim
            ? [[volume.name, volume.persistentVolumeClaim.claimName]]
            : [],
        ),
      );
      const volumes = (container.volumeMounts ?? []).flatMap((mount) => {
        const claimName = claims.get(mount.name);
        return claimName === undefined ? [] : [{ claimName, mountPoint: mount.mountPath }];
      });
      return { instance: deployment.metadata!.name!, volumes };
    }
    return undefined;
  }
}
