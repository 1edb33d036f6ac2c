// The caller by its token, from the Kubernetes API: the only file importing client-node.
import { imageStorePath } from '../store/closure-views';
import { createHash } from 'node:crypto';
import { SHOOT_TOKEN_AUDIENCE } from '@seed/contracts';
import { loadKubeConfig } from '@seed/kube-config';
import {
  ApiException,
  AuthenticationV1Api,
  CoreV1Api,
  KubeConfig,
  type V1Container,
} from '@kubernetes/client-node';
import {
  CallerLookupFailed,
  CallerRejected,
  normalizeIp,
  type Caller,
  type CallerClaim,
  type CallerResolver,
  type CallerVolume,
} from './caller';

export const LABEL_MANAGED_BY = 'seed.loom.farm/managed-by';
/** Rendered by k8s-model into the instance container only when `meta.shoot.enable`. */
export const ENV_SHOOT_URL = 'SEED_SHOOT_URL';

// What a TokenReview says about a pod-bound service-account token.
const EXTRA_POD_NAME = 'authentication.kubernetes.io/pod-name';
const EXTRA_POD_UID = 'authentication.kubernetes.io/pod-uid';
const SERVICE_ACCOUNT_USER = /^system:serviceaccount:([^:]+):[^:]+$/;

// Reviews are cached briefly: a shoot burst from one pod costs one review, and a revoked
// token (its pod deleted) is refused by the pod lookup that follows every review anyway.
const REVIEW_TTL_MS = 10_000;
const REVIEW_CACHE_MAX = 1_000;

/** The pod a token was issued to, as the API server vouches for it. */
interface TokenIdentity {
  namespace: string;
  pod: string;
  uid: string;
}

/**
 * The caller is the pod its token names. The token is the pod's projected service-account
 * token (audience `seed-shoot`), which `seed-shoot` sends as a bearer token; a TokenReview
 * tells whether the API server issued it for shoots and to which pod. That pod must still
 * be the one the token was bound to (its uid), Running on this node, in a namespace Seed
 * manages, with shoots enabled (k8s-model renders `SEED_SHOOT_URL` into the instance
 * container exactly when `meta.shoot.enable`: what the running pod was actually given), and
 * the request must come from its IP: a token read out of one pod does not let another
 * shoot, nor does an address alone.
 *
 * Volumes: every volumeMount of that container whose volume is a PersistentVolumeClaim →
 * the claim (must be Bound) → its PersistentVolume → `spec.hostPath.path` or
 * `spec.local.path` (the local-path provisioner). Anything unresolvable rejects the call
 * (409 with the reason); nothing is silently dropped. Other volume kinds (configMap,
 * projected tokens, emptyDir) are not the instance's storage and are not shared.
 * The store is the node's store (`storeDir`): nix-snapshotter serves pod images from it;
 * the shoot sees the closure of the container's image (`nix:0/nix/store/…`) in it.
 */
export class KubeCallerResolver implements CallerResolver {
  readonly #core: CoreV1Api;
  readonly #authentication: AuthenticationV1Api;
  readonly #reviews = new Map<string, { identity: Promise<TokenIdentity>; expires: number }>();

  constructor(
    config: KubeConfig,
    private readonly storeDir: string,
    /** The node this pool serves: callers must run on it. */
    private readonly nodeName: string,
    private readonly now: () => number = Date.now,
  ) {
    this.#core = config.makeApiClient(CoreV1Api);
    this.#authentication = config.makeApiClient(AuthenticationV1Api);
  }

  /** From a kubeconfig file, or the usual places (in-cluster, $KUBECONFIG, ~/.kube/config). */
  static fromKubeconfig(storeDir: string, nodeName: string, path?: string): KubeCallerResolver {
    return new KubeCallerResolver(loadKubeConfig(path), storeDir, nodeName);
  }

  async resolve({ ip: sourceIp, token }: CallerClaim): Promise<Caller> {
    if (token === undefined || token === '') {
      throw new CallerRejected(
        `no token: send the pod's projected service-account token (audience ${SHOOT_TOKEN_AUDIENCE}) as "Authorization: Bearer <token>", as seed-shoot does`,
        'unauthenticated',
      );
    }
    const identity = await this.#review(token);
    const name = `${identity.namespace}/${identity.pod}`;
    const pod = await this.#call(`read pod ${name}`, () =>
      this.#core.readNamespacedPod({ name: identity.pod, namespace: identity.namespace }),
    ).catch((error: unknown) => {
      if (error instanceof CallerRejected) {
        throw new CallerRejected(`the token's pod ${name} no longer exists`);
      }
      throw error;
    });
    if (pod.metadata?.uid !== identity.uid) {
      throw new CallerRejected(`the token was issued to an earlier pod named ${name}`);
    }
    if (pod.status?.phase !== 'Running') {
      throw new CallerRejected(`pod ${name} is not running (${pod.status?.phase ?? 'unknown'})`);
    }
    if (pod.spec?.nodeName !== this.nodeName) {
      throw new CallerRejected(
        `pod ${name} runs on node ${pod.spec?.nodeName ?? '(none)'}, not on this pool's node ${this.nodeName}`,
      );
    }
    const ip = normalizeIp(sourceIp);
    if (pod.status?.podIP !== ip) {
      throw new CallerRejected(
        `the token is pod ${name}'s, but the request came from ${ip}, not from its IP ${pod.status?.podIP ?? '(none)'}`,
      );
    }
    const namespace = await this.#call(`read namespace ${identity.namespace}`, () =>
      this.#core.readNamespace({ name: identity.namespace }),
    );
    if (namespace.metadata?.labels?.[LABEL_MANAGED_BY] !== 'seed') {
      throw new CallerRejected(
        `pod ${name} is in namespace ${identity.namespace}, which Seed does not manage`,
      );
    }
    if (pod.metadata?.labels?.[LABEL_MANAGED_BY] !== 'seed') {
      throw new CallerRejected(`pod ${name} is not labelled ${LABEL_MANAGED_BY}=seed`);
    }
    const container = pod.spec?.containers.find(hasShootUrl);
    if (container === undefined) {
      throw new CallerRejected(
        `pod ${name} has not enabled shoots (no container has ${ENV_SHOOT_URL}: meta.shoot.enable is off)`,
      );
    }
    const volumes: CallerVolume[] = [];
    for (const mount of container.volumeMounts ?? []) {
      const volume = pod.spec?.volumes?.find((candidate) => candidate.name === mount.name);
      const claimName = volume?.persistentVolumeClaim?.claimName;
      if (claimName === undefined) continue;
      if (mount.subPath !== undefined && mount.subPath !== '') {
        throw new CallerRejected(
          `pod ${name}: volume ${mount.name} uses a subPath, which shoots do not support`,
          'unresolvable',
        );
      }
      volumes.push({
        hostPath: await this.#claimPath(identity.namespace, claimName),
        mountPoint: mount.mountPath,
      });
    }
    let image: string;
    try {
      image = imageStorePath(container.image ?? '', this.storeDir);
    } catch (error) {
      throw new CallerRejected(`pod ${name}: ${(error as Error).message}`, 'unresolvable');
    }
    return { key: name, store: this.storeDir, image, volumes };
  }

  /** The pod the API server says the token was issued to, for shoots; cached briefly. */
  #review(token: string): Promise<TokenIdentity> {
    const key = createHash('sha256').update(token).digest('hex');
    const now = this.now();
    const cached = this.#reviews.get(key);
    if (cached !== undefined && cached.expires > now) return cached.identity;
    if (this.#reviews.size >= REVIEW_CACHE_MAX) {
      for (const [stale, entry] of this.#reviews) {
        if (entry.expires <= now) this.#reviews.delete(stale);
      }
      if (this.#reviews.size >= REVIEW_CACHE_MAX) this.#reviews.clear();
    }
    const identity = this.#askReview(token);
    this.#reviews.set(key, { identity, expires: now + REVIEW_TTL_MS });
    // A failed lookup (API server away) is not remembered: the next request asks again.
    identity.catch((error: unknown) => {
      if (error instanceof CallerLookupFailed) this.#reviews.delete(key);
    });
    return identity;
  }

  async #askReview(token: string): Promise<TokenIdentity> {
    const review = await this.#call('review the token', () =>
      this.#authentication.createTokenReview({
        body: { spec: { token, audiences: [SHOOT_TOKEN_AUDIENCE] } },
      }),
    );
    const status = review.status;
    if (status?.authenticated !== true) {
      throw new CallerRejected(
        `the API server does not accept the token for ${SHOOT_TOKEN_AUDIENCE}${status?.error ? `: ${status.error}` : ''}`,
        'unauthenticated',
      );
    }
    if (!(status.audiences ?? []).includes(SHOOT_TOKEN_AUDIENCE)) {
      throw new CallerRejected(
        `the token is not for the audience ${SHOOT_TOKEN_AUDIENCE}`,
        'unauthenticated',
      );
    }
    const namespace = SERVICE_ACCOUNT_USER.exec(status.user?.username ?? '')?.[1];
    const pod = status.user?.extra?.[EXTRA_POD_NAME]?.[0];
    const uid = status.user?.extra?.[EXTRA_POD_UID]?.[0];
    if (namespace === undefined || pod === undefined || uid === undefined) {
      throw new CallerRejected(
        `the token is not a pod's service-account token (user ${status.user?.username ?? '?'})`,
        'unauthenticated',
      );
    }
    return { namespace, pod, uid };
  }

  async #claimPath(namespace: string, claimName: string): Promise<string> {
    const claim = await this.#call(`read claim ${namespace}/${claimName}`, () =>
      this.#core.readNamespacedPersistentVolumeClaim({ name: claimName, namespace }),
    );
    const volumeName = claim.spec?.volumeName;
    if (claim.status?.phase !== 'Bound' || volumeName === undefined || volumeName === '') {
      throw new CallerRejected(
        `claim ${namespace}/${claimName} is not bound (phase ${claim.status?.phase ?? 'unknown'})`,
        'unresolvable',
      );
    }
    const volume = await this.#call(`read volume ${volumeName}`, () =>
      this.#core.readPersistentVolume({ name: volumeName }),
    );
    const hostPath = volume.spec?.hostPath?.path ?? volume.spec?.local?.path;
    if (hostPath === undefined || !hostPath.startsWith('/')) {
      throw new CallerRejected(
        `volume ${volumeName} of claim ${namespace}/${claimName} is neither hostPath nor local: its data is not on this node's disk`,
        'unresolvable',
      );
    }
    return hostPath;
  }

  async #call<T>(what: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) {
        throw new CallerRejected(`${what}: not found`, 'unresolvable');
      }
      if (error instanceof ApiException && error.code < 500 && error.code !== 429) {
        throw new CallerLookupFailed(`${what}: the API server answered ${error.code}`);
      }
      throw new CallerLookupFailed(`${what}: ${(error as Error).message}`);
    }
  }
}

function hasShootUrl(container: V1Container): boolean {
  return (container.env ?? []).some((env) => env.name === ENV_SHOOT_URL);
}
