import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { startKubeApiServer, type KubeApiServer } from '@seed/local-parts';
import { loadKubeConfig } from '../src';

let api: KubeApiServer;

beforeAll(async () => {
  api = await startKubeApiServer();
}, 20 * 60_000);

afterAll(async () => {
  await api?.stop();
});

/** TLS connections opened while `calls` API requests run one after another. */
async function connectionsFor(config: KubeConfig, calls: number): Promise<number> {
  const core = config.makeApiClient(CoreV1Api);
  const connect = jest.spyOn(tls, 'connect');
  try {
    for (let i = 0; i < calls; i++) await core.listNamespace();
    return connect.mock.calls.length;
  } finally {
    connect.mockRestore();
  }
}

describe('KeepAliveKubeConfig', () => {
  it('reuses one TLS connection where client-node opens one per call', async () => {
    const plain = new KubeConfig();
    plain.loadFromFile(api.kubeconfigPath);
    expect(await connectionsFor(plain, 5)).toBe(5);

    const kept = loadKubeConfig(api.kubeconfigPath);
    expect(await connectionsFor(kept, 5)).toBe(1);
    expect(await connectionsFor(kept, 5)).toBe(0);
  });

  it('still refuses a server whose certificate it does not trust', async () => {
    const config = loadKubeConfig(api.kubeconfigPath);
    const cluster = config.getCurrentCluster()!;
    config.clusters = [{ ...cluster, caData: undefined, caFile: undefined }];
    await expect(config.makeApiClient(CoreV1Api).listNamespace()).rejects.toThrow(/certificate/);
  });
});
