import http from 'node:http';
import https from 'node:https';
import { AppsV1Api, CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { loadKubeAccess, type KubeAccess } from '../config';
import { kubeCall, statusMessage } from '../kube-call';
import type { InstanceKeysPort } from '../keys/instance-keys';
import {
  KubeCallError,
  type InstanceLogsPort,
  type LogOptions,
  type PodSummary,
} from './instance-logs';

/**
 * `seed logs`' reads through the API server with the operator's kubeconfig (or the pod's
 * service account in a cluster). The log is read with a plain HTTP(S) request carrying
 * client-node's TLS and credentials: client-node's own `Log` drops the API server's
 * error message (why there is no log), which is what the operator needs to see.
 */
export class KubeLogsRepository implements InstanceLogsPort, InstanceKeysPort {
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;

  constructor(private readonly config: KubeConfig) {
    this.core = config.makeApiClient(CoreV1Api);
    this.apps = config.makeApiClient(AppsV1Api);
  }

  static connect(access: KubeAccess): KubeLogsRepository {
    return new KubeLogsRepository(loadKubeAccess(access));
  }

  async namespace(name: string): Promise<{ annotations: Record<string, string> } | undefined> {
    try {
      const namespace = await kubeCall(() => this.core.readNamespace({ name }));
      return { annotations: namespace.metadata?.annotations ?? {} };
    } catch (error) {
      if (error instanceof KubeCallError && error.status === 404) return undefined;
      throw error;
    }
  }

  async configMap(namespace: string, name: string): Promise<Record<string, string> | undefined> {
    try {
      const configMap = await kubeCall(() =>
        this.core.readNamespacedConfigMap({ namespace, name }),
      );
      return configMap.data ?? {};
    } catch (error) {
      if (error instanceof KubeCallError && error.status === 404) return undefined;
      throw error;
    }
  }

  async deployments(namespace: string, labelSelector: string): Promise<string[]> {
    const list = await kubeCall(() =>
      this.apps.listNamespacedDeployment({ namespace, labelSelector }),
    );
    return list.items.map((deployment) => deployment.metadata?.name ?? '');
  }

  async pods(namespace: string, labelSelector: string): Promise<PodSummary[]> {
    const list = await kubeCall(() => this.core.listNamespacedPod({ namespace, labelSelector }));
    return list.items.map(summary);
  }

  async streamLog(
    target: { namespace: string; pod: string; container: string },
    options: LogOptions,
    write: (chunk: Uint8Array) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    const cluster = this.config.getCurrentCluster();
    if (!cluster) throw new KubeCallError('the kubeconfig has no current cluster');
    const url = new URL(
      `${cluster.server.replace(/\/+$/, '')}/api/v1/namespaces/${encodeURIComponent(target.namespace)}` +
        `/pods/${encodeURIComponent(target.pod)}/log`,
    );
    url.searchParams.set('container', target.container);
    if (options.follow) url.searchParams.set('follow', 'true');
    if (options.previous) url.searchParams.set('previous', 'true');
    if (options.tailLines !== undefined)
      url.searchParams.set('tailLines', String(options.tailLines));
    const request: https.RequestOptions = { method: 'GET', headers: {} };
    await this.config.applyToHTTPSOptions(request);
    const plain = url.protocol === 'http:';
    const client = plain ? http : https;
    if (plain) delete request.agent; // a TLS agent cannot carry plain HTTP

    await new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return resolve();
      const onAbort = () => {
        req.destroy();
        resolve();
      };
      const req = client.request(url, { ...request, signal: undefined }, (response) => {
        const status = response.statusCode ?? 0;
        if (status < 200 || status > 299) {
          const body: Buffer[] = [];
          response.on('data', (chunk: Buffer) => body.push(chunk));
          response.on('end', () =>
            reject(new KubeCallError(statusMessage(Buffer.concat(body).toString('utf8')), status)),
          );
          return;
        }
        response.on('data', (chunk: Buffer) => write(chunk));
        response.on('end', () => resolve());
        response.on('error', (error) =>
          signal?.aborted ? resolve() : reject(new KubeCallError(error.message)),
        );
      });
      req.on('error', (error) =>
        signal?.aborted ? resolve() : reject(new KubeCallError(error.message)),
      );
      req.on('close', () => signal?.removeEventListener('abort', onAbort));
      signal?.addEventListener('abort', onAbort, { once: true });
      req.end();
    });
  }
}

function summary(pod: V1Pod): PodSummary {
  const created = pod.metadata?.creationTimestamp;
  return {
    name: pod.metadata?.name ?? '',
    createdAt: created ? new Date(created).toISOString() : '',
    phase: pod.status?.phase ?? 'Pending',
    ready: pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    terminating: pod.metadata?.deletionTimestamp !== undefined,
    nodeName: pod.spec?.nodeName,
  };
}
