// Who is calling: the pod a request proves it comes from, its store and its volumes' host
// folders.
import { z } from 'zod';

export interface CallerVolume {
  /** The host folder holding the volume's data. */
  hostPath: string;
  /** Where the caller's container (and so the shoot's guest) mounts it. */
  mountPoint: string;
}

export interface Caller {
  /** Names the caller in limits and logs: `namespace/pod`, or the IP for a static caller. */
  key: string;
  /** The host folder the caller's /nix/store comes from. */
  store: string;
  /**
   * The store path of the caller's image: the guest's /nix/store shows its closure and
   * nothing else (store/closure-views.ts). Unset only for a local caller sharing a plain
   * folder (development).
   */
  image?: string;
  volumes: CallerVolume[];
}

/** What a request says about who sent it: its source address and the bearer token it carried. */
export interface CallerClaim {
  ip: string;
  token?: string;
}

/**
 * Why a caller may not shoot: it did not prove who it is (`unauthenticated`: no token, or
 * one the API server does not accept for shoots), it is not an allowed caller
 * (`forbidden`), or it is one but what it shares cannot be found or mounted
 * (`unresolvable`). The transports map each to a status.
 */
export type CallerRejection = 'unauthenticated' | 'forbidden' | 'unresolvable';

export class CallerRejected extends Error {
  override readonly name = 'CallerRejected';

  constructor(
    message: string,
    readonly reason: CallerRejection = 'forbidden',
  ) {
    super(message);
  }
}

export interface CallerResolver {
  /** The caller a request proves; throws CallerRejected with the reason when there is none. */
  resolve(claim: CallerClaim): Promise<Caller>;
}

/** IPv4-mapped IPv6 (`::ffff:10.0.0.5`) is the IPv4 address a pod has. */
export function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice('::ffff:'.length) : ip;
}

const staticSchema = z.record(
  z.string().min(1),
  z.object({
    store: z.string().startsWith('/'),
    image: z.string().startsWith('/').optional(),
    volumes: z
      .array(
        z.object({ hostPath: z.string().startsWith('/'), mountPoint: z.string().startsWith('/') }),
      )
      .default([]),
  }),
);

/**
 * A development aid for running the pool without Kubernetes: a fixed map of source IP to
 * caller (`SEED_SHOOT_LOCAL_CALLER`, JSON `{"127.0.0.1": {"store": "/nix/store",
 * "image": "/nix/store/<hash>-image", "volumes": [{"hostPath": "/tmp/vol", "mountPoint":
 * "/data"}]}}`; without `image` the guest sees the whole `store` folder). Not for production:
 * nothing checks that the process behind the IP is a Seed instance.
 */
export class StaticCallerResolver implements CallerResolver {
  readonly #callers: Map<string, Caller>;

  constructor(callers: Record<string, Omit<Caller, 'key'>>) {
    this.#callers = new Map(
      Object.entries(callers).map(([ip, caller]) => [
        normalizeIp(ip),
        { key: normalizeIp(ip), ...caller },
      ]),
    );
  }

  /** From the JSON of SEED_SHOOT_LOCAL_CALLER; throws with the reason when malformed. */
  static fromJson(json: string): StaticCallerResolver {
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch (error) {
      throw new Error(`not JSON: ${(error as Error).message}`, { cause: error });
    }
    const result = staticSchema.safeParse(parsed);
    if (!result.success) {
      throw new Error(
        result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; '),
      );
    }
    return new StaticCallerResolver(result.data);
  }

  /**
   * The store folder of the first configured caller when it shares the whole folder: the
   * one the pool pre-binds. A caller with an image gets its closure view per shoot.
   */
  firstStore(): string | undefined {
    const first = this.#callers.values().next().value;
    return first?.image === undefined ? first?.store : undefined;
  }

  resolve({ ip }: CallerClaim): Promise<Caller> {
    const caller = this.#callers.get(normalizeIp(ip));
    if (caller === undefined) {
      return Promise.reject(new CallerRejected(`${ip} is not a configured local caller`));
    }
    return Promise.resolve(caller);
  }
}

/** The caller could not be looked up (the API server is away): HTTP 503, try again. */
export class CallerLookupFailed extends Error {
  override readonly name = 'CallerLookupFailed';
}
