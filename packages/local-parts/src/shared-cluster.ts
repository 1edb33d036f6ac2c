// One local cluster for a whole test run. Only one kubelet runs per machine and a node
// takes a while to start, so a jest project's global set-up starts the cluster once
// (`hostSharedCluster`) and each test file takes its turn on it (`takeClusterTurn`): two
// files' reconcilers on one cluster at once would each restore the other's flakes. A
// turn ends by deleting the namespaces it made, so the next file starts from a clean
// cluster; its node, DNS and images stay warm.
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { acquireFolderLock } from './folder-lock';
import type { KubeApiServer } from './kube-apiserver';
import { startLocalCluster } from './local-cluster';
import { sleep } from './managed-process';
import type { LocalNode, NodeOptions } from './node/node';
import { kubeRequest } from './node/kube-requests';

/** Names the file describing the run's shared cluster; set for the test workers. */
export const SHARED_CLUSTER_ENV = 'SEED_SHARED_CLUSTER';

type NodePart = Parameters<LocalNode['restart']>[0];

interface SharedClusterDescriptor {
  api: Pick<KubeApiServer, 'url' | 'token' | 'caCert' | 'kubeconfigPath' | 'dir'>;
  node: Pick<LocalNode, 'name' | 'ip' | 'podCidr' | 'serviceCidr'>;
  /** Loopback URL of the host's control server: `POST /restart/<part>`. */
  controlUrl: string;
}

export interface SharedClusterHost {
  descriptorPath: string;
  /** Stops the control server and the cluster (putting the host back). */
  stop(): Promise<void>;
}

/** Starts the run's cluster and publishes it to test workers through the environment. */
export async function hostSharedCluster(options: NodeOptions = {}): Promise<SharedClusterHost> {
  const cluster = await startLocalCluster(options);
  let control: Server | undefined;
  try {
    control = await listenForRestarts(cluster.node);
    const descriptor: SharedClusterDescriptor = {
      api: pick(cluster.api, ['url', 'token', 'caCert', 'kubeconfigPath', 'dir']),
      node: pick(cluster.node, ['name', 'ip', 'podCidr', 'serviceCidr']),
      controlUrl: `http://127.0.0.1:${(control.address() as AddressInfo).port}`,
    };
    const descriptorPath = path.join(cluster.api.dir, 'shared-cluster.json');
    await writeFile(descriptorPath, JSON.stringify(descriptor), { mode: 0o600 });
    process.env[SHARED_CLUSTER_ENV] = descriptorPath;
    const server = control;
    return {
      descriptorPath,
      stop: async () => {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
        await cluster.stop();
      },
    };
  } catch (error) {
    control?.close();
    await cluster.stop();
    throw error;
  }
}

export interface ClusterTurn {
  api: SharedClusterDescriptor['api'];
  node: SharedClusterDescriptor['node'] & {
    /** Kills and starts one part again, through the host that runs the node. */
    restart(part: NodePart): Promise<void>;
  };
  /** Deletes the namespaces made during the turn, waits until they are gone, and hands over. */
  end(): Promise<void>;
}

/** Waits for this run's shared cluster to be free, then holds it until `end()`. */
export async function takeClusterTurn(timeoutMs = 30 * 60_000): Promise<ClusterTurn> {
  const descriptorPath = process.env[SHARED_CLUSTER_ENV];
  if (!descriptorPath) {
    throw new Error(
      `${SHARED_CLUSTER_ENV} is not set: run this file through its package's jest config, whose node project starts the shared cluster`,
    );
  }
  const descriptor = JSON.parse(await readFile(descriptorPath, 'utf8')) as SharedClusterDescriptor;
  const lock = await acquireFolderLock(path.join(descriptor.api.dir, 'turn'), {
    timeoutMs,
    busyMessage: (owner) => `another test file (${owner}) still holds the shared cluster`,
  });
  try {
    const before = new Set(await namespaceNames(descriptor.api));
    return {
      api: descriptor.api,
      node: { ...descriptor.node, restart: (part) => askHost(descriptor.controlUrl, part) },
      end: async () => {
        try {
          const made = (await namespaceNames(descriptor.api)).filter((name) => !before.has(name));
          await deleteNamespaces(descriptor.api, made);
        } finally {
          await lock.release();
        }
      },
    };
  } catch (error) {
    await lock.release();
    throw error;
  }
}

async function listenForRestarts(node: LocalNode): Promise<Server> {
  const server = createServer((req, res) => {
    const part = /^\/restart\/([a-z-]+)$/.exec(req.url ?? '')?.[1];
    if (req.method !== 'POST' || (part !== 'kubelet' && part !== 'containerd')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'POST /restart/kubelet or /restart/containerd' }));
      return;
    }
    node.restart(part).then(
      () => res.writeHead(204).end(),
      (error: Error) => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: error.message }));
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function askHost(controlUrl: string, part: NodePart): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(`/restart/${part}`, controlUrl), { method: 'POST' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        res.statusCode === 204
          ? resolve()
          : reject(new Error(`restarting the node's ${part}: ${Buffer.concat(chunks).toString()}`)),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

type ApiAccess = SharedClusterDescriptor['api'];

async function namespaceNames(api: ApiAccess): Promise<string[]> {
  const { status, body } = await kubeRequest(api, 'GET', '/api/v1/namespaces');
  if (status !== 200) throw new Error(`listing namespaces: ${status} ${JSON.stringify(body)}`);
  return (body as { items: { metadata: { name: string } }[] }).items.map((ns) => ns.metadata.name);
}

/** Deleting a namespace waits for its pods to stop: their servers handle SIGTERM. */
async function deleteNamespaces(api: ApiAccess, names: string[], timeoutMs = 120_000) {
  for (const name of names) {
    const { status, body } = await kubeRequest(api, 'DELETE', `/api/v1/namespaces/${name}`);
    if (status !== 200 && status !== 202 && status !== 404) {
      throw new Error(`deleting namespace ${name}: ${status} ${JSON.stringify(body)}`);
    }
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = (await namespaceNames(api)).filter((name) => names.includes(name));
    if (left.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(`namespaces ${left.join(', ')} still terminating after ${timeoutMs} ms`);
    }
    await sleep(500);
  }
}

function pick<T extends object, K extends keyof T>(from: T, keys: K[]): Pick<T, K> {
  return Object.fromEntries(keys.map((key) => [key, from[key]])) as Pick<T, K>;
}
