// A whole local cluster: an API server set up for a node, and the node. Only one kubelet
// can run per machine, so test files that need one take turns on the node's machine-wide
// lock (node-lock.ts), each working in namespaces of its own.
import { startKubeApiServer, type KubeApiServer } from './kube-apiserver';
import { startNode, type LocalNode, type NodeOptions } from './node/node';

export interface LocalCluster {
  api: KubeApiServer;
  node: LocalNode;
  /** Stops the node (putting the host back), then the API server. Idempotent. */
  stop(): Promise<void>;
}

export async function startLocalCluster(options: NodeOptions = {}): Promise<LocalCluster> {
  const api = await startKubeApiServer({ forNode: true });
  try {
    const node = await startNode(api, options);
    return {
      api,
      node,
      stop: async () => {
        try {
          await node.stop();
        } finally {
          await api.stop();
        }
      },
    };
  } catch (error) {
    await api.stop();
    throw error;
  }
}
