// The API server admits a pod against a ResourceQuota only once the quota's status says
// what is used, and a controller computes that: kube-controller-manager's resource quota
// controller, here alone against an API server of startKubeApiServer. It needs no node
// (it touches nothing on the host and takes no machine-wide lock), only the node's build
// of kube-controller-manager.
import { mkdtemp, rm } from 'node:fs/promises';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { KubeApiServer } from './kube-apiserver';
import { ManagedProcess, waitFor } from './managed-process';
import { nodeBinaries } from './node/node';
import { freeLoopbackPort } from './ports';

export interface QuotaController {
  /** Stops the controller (SIGTERM, then SIGKILL) and removes its folder. Idempotent. */
  stop(): Promise<void>;
}

/** Starts the resource quota controller against `api` (as its admin) and waits until it serves. */
export async function startQuotaController(
  api: Pick<KubeApiServer, 'kubeconfigPath'>,
  options: { binDir?: string; startTimeoutMs?: number } = {},
): Promise<QuotaController> {
  const binDir = options.binDir ?? (await nodeBinaries());
  const dir = await mkdtemp(path.join(tmpdir(), 'seed-quota-controller-'));
  const port = await freeLoopbackPort();
  const controller = ManagedProcess.spawn(
    path.join(binDir, 'kube-controller-manager'),
    [
      `--kubeconfig=${api.kubeconfigPath}`,
      `--authentication-kubeconfig=${api.kubeconfigPath}`,
      `--authorization-kubeconfig=${api.kubeconfigPath}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      '--leader-elect=false',
      '--controllers=resourcequota-controller',
    ],
    dir,
    'kube-controller-manager',
  );
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      await controller.stop(5_000);
      await rm(dir, { recursive: true, force: true });
    })());
  try {
    await waitFor(
      'kube-controller-manager',
      controller,
      Date.now() + (options.startTimeoutMs ?? 60_000),
      () => healthy(port),
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { stop };
}

/** Its /healthz answers 200 (its serving certificate is self-signed). */
function healthy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get(
      { host: '127.0.0.1', port, path: '/healthz', rejectUnauthorized: false, timeout: 2_000 },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}
