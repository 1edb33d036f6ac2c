// The baseline: what Kubernetes alone takes to roll out an image change of a Deployment
// Seed does not manage, on the same node in the same run. The Deployment is shaped like
// the one Seed renders for `web` (one replica, Recreate, the `kata` RuntimeClass, no
// readiness probe, no service-account token, a ClusterIP Service), and runs busybox httpd
// from a nix:0 image whose page says which image it is. Its images are built into the
// host's nix store beforehand, so the node has nothing to fetch: Seed's pushes fetch
// web's new closure from the builder's binary cache, which counts in their pod start.
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  AppsV1Api,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import { addToStore, buildNixImage, NODE_BINARIES_SCRIPT } from '@seed/local-parts';
import { PodTimeline } from './pod-timeline';
import { servedAt } from './served';

const run = promisify(execFile);
const NAME = 'plain-web';
const PORT = 8080;
const LABELS = { app: NAME };

/** Milliseconds of one image change, from the PATCH to the new page served. */
export interface BaselineTimes {
  /** The PATCH of the Deployment's image (API server round trip). */
  patch: number;
  /** Patched to the new pod's container running. */
  podStart: number;
  /** Running to Ready. */
  ready: number;
  /** Ready to the Service answering with the new page. */
  served: number;
  total: number;
}

/** An image and the text its page carries. */
interface PageImage {
  image: string;
  marker: string;
}

/**
 * `count` nix:0 images of busybox httpd serving a page with a marker of its own; busybox
 * is the host's static one, as in the node's tests.
 */
export async function buildPageImages(count: number, run_: string): Promise<PageImage[]> {
  const binDir = (await run(NODE_BINARIES_SCRIPT, [], { maxBuffer: 16 * 1024 * 1024 })).stdout
    .trim()
    .split('\n')
    .pop()!;
  const work = await mkdtemp(path.join(tmpdir(), 'seed-bench-e2e-'));
  try {
    await mkdir(path.join(work, 'busybox', 'bin'), { recursive: true });
    await copyFile('/bin/busybox', path.join(work, 'busybox', 'bin', 'busybox'));
    const busybox = await addToStore(path.join(work, 'busybox'));
    // PID 1 has no default action for SIGTERM: the shell's trap stops httpd at once, as
    // the example's httpd.sh does for web. (A file, not `sh -c`: buildNixImage quotes the
    // image config in single quotes.)
    await mkdir(path.join(work, 'launcher'));
    await writeFile(
      path.join(work, 'launcher', 'httpd.sh'),
      `trap 'kill "$server"; exit 0' TERM INT\n"$1" httpd -f -p ${PORT} -h "$2" &\nserver=$!\nwait "$server"\n`,
    );
    const launcher = await addToStore(path.join(work, 'launcher'));
    const images: PageImage[] = [];
    for (let index = 0; index < count; index += 1) {
      const marker = `plain image ${run_}-${index}`;
      const www = path.join(work, `www-${index}`);
      await mkdir(www);
      await writeFile(path.join(www, 'index.html'), `${marker}\n`);
      const site = await addToStore(www);
      const shell = `${busybox}/bin/busybox`;
      const archive = await buildNixImage(
        path.join(binDir, 'nix2container'),
        `plain-web-${index}.tar`,
        {
          closure: [busybox, launcher, site],
          config: { Entrypoint: [shell, 'sh', `${launcher}/httpd.sh`, shell, site] },
        },
      );
      images.push({ image: `nix:0${archive}`, marker });
    }
    return images;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The plain Deployment and its Service, in a namespace of their own. */
export class PlainDeployment {
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;
  private url = '';

  private constructor(
    config: KubeConfig,
    private readonly namespace: string,
    private readonly pods: PodTimeline,
    private readonly signal: AbortSignal,
    private readonly timeoutMs: number,
  ) {
    this.core = config.makeApiClient(CoreV1Api);
    this.apps = config.makeApiClient(AppsV1Api);
  }

  /** Creates the namespace, the Deployment on `first` and its Service, and waits until served. */
  static async create(
    config: KubeConfig,
    namespace: string,
    first: PageImage,
    signal: AbortSignal,
    timeoutMs: number,
  ): Promise<PlainDeployment> {
    const core = config.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    const pods = await PodTimeline.start(config, namespace, `app=${NAME}`);
    const deployment = new PlainDeployment(config, namespace, pods, signal, timeoutMs);
    await deployment.apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name: NAME, labels: LABELS },
        spec: {
          replicas: 1,
          selector: { matchLabels: LABELS },
          strategy: { type: 'Recreate' },
          template: {
            metadata: { labels: LABELS },
            spec: {
              runtimeClassName: 'kata',
              automountServiceAccountToken: false,
              enableServiceLinks: false,
              containers: [
                {
                  name: NAME,
                  image: first.image,
                  imagePullPolicy: 'IfNotPresent',
                  ports: [{ name: 'http', containerPort: PORT }],
                },
              ],
            },
          },
        },
      },
    });
    const service = await core.createNamespacedService({
      namespace,
      body: {
        metadata: { name: NAME },
        spec: { selector: LABELS, ports: [{ name: 'http', port: PORT, targetPort: PORT }] },
      },
    });
    deployment.url = `http://${service.spec!.clusterIP!}:${PORT}/`;
    await servedAt(deployment.url, first.marker, signal, timeoutMs);
    return deployment;
  }

  /** Changes the Deployment's image and times it until the Service serves the new page. */
  async change(next: PageImage): Promise<BaselineTimes> {
    const known = this.pods.uids();
    const patchedAt = Date.now();
    await this.apps.patchNamespacedDeployment(
      {
        namespace: this.namespace,
        name: NAME,
        body: { spec: { template: { spec: { containers: [{ name: NAME, image: next.image }] } } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    const answeredAt = Date.now();
    const pod = await this.pods.newReadyPod(known, this.signal, this.timeoutMs);
    const served = await servedAt(this.url, next.marker, this.signal, this.timeoutMs);
    return {
      patch: answeredAt - patchedAt,
      podStart: pod.runningAt - answeredAt,
      ready: pod.readyAt - pod.runningAt,
      served: served - pod.readyAt,
      total: served - patchedAt,
    };
  }

  stop(): void {
    this.pods.stop();
  }
}
