import https from 'node:https';
import {
  KubeConfig,
  type Informer,
  type KubernetesObject,
  type RequestContext,
} from '@kubernetes/client-node';

/**
 * A KubeConfig whose API calls share one keep-alive TLS agent. client-node 1.x builds a
 * new agent for every request, so each call pays a TLS handshake (about three round trips
 * on loopback). The shared agent is rebuilt when the TLS material changes (a rotated
 * client certificate), and proxies keep client-node's own agents.
 */
export class KeepAliveKubeConfig extends KubeConfig {
  #shared: { key: string; agent: https.Agent } | undefined;

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const fresh = context.getAgent();
    // A proxy agent subclasses https.Agent too; only the plain one is replaced.
    if (fresh?.constructor !== https.Agent) return;
    const options = (fresh as https.Agent & { options: https.AgentOptions }).options;
    const key = JSON.stringify([
      options.ca,
      options.cert,
      options.key,
      options.pfx,
      options.passphrase,
      options.servername,
      options.rejectUnauthorized,
    ]);
    if (this.#shared?.key !== key) {
      // Requests still on the old agent finish; its idle sockets then time out.
      this.#shared = { key, agent: new https.Agent({ ...options, keepAlive: true }) };
    }
    context.setAgent(this.#shared.agent);
  }
}

/** From a kubeconfig file, or the usual places (in-cluster, $KUBECONFIG, ~/.kube/config). */
export function loadKubeConfig(path?: string): KeepAliveKubeConfig {
  const config = new KeepAliveKubeConfig();
  if (path) config.loadFromFile(path);
  else config.loadFromDefault();
  return config;
}

/** An informer kept running until `stop`. */
export interface RunningInformer {
  stop(): Promise<void>;
}

/**
 * Starts an informer and starts it again after every error (an API server restart ends
 * its watch), with a growing pause so an outage does not become a hot loop. `onError`
 * hears each error before the retry.
 */
export function keepInformerRunning(
  informer: Pick<Informer<KubernetesObject>, 'start' | 'stop' | 'on'>,
  onError: (error: unknown) => void,
): RunningInformer {
  let stopped = false;
  let pauseMs = 500;
  let timer: NodeJS.Timeout | undefined;
  const start = () => {
    informer.start().then(
      () => {
        pauseMs = 500;
      },
      (error: unknown) => restart(error),
    );
  };
  const restart = (error: unknown) => {
    if (stopped) return;
    onError(error);
    clearTimeout(timer);
    timer = setTimeout(start, pauseMs);
    pauseMs = Math.min(pauseMs * 2, 30_000);
  };
  informer.on('error', restart);
  start();
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await informer.stop();
    },
  };
}
