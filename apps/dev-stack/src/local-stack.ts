import path from 'node:path';
import { redisAclUsers } from '@seed/builds-queue';
import {
  freeLoopbackPorts,
  startLocalCluster,
  startNixDaemon,
  startPrometheus,
  startRedis,
  startServiceProcess,
  type LocalCluster,
  type LocalNixDaemon,
  type LocalPrometheus,
  type ScrapeTarget,
  type LocalRedis,
  type NodeOptions,
  type ServiceProcess,
} from '@seed/local-parts';
import { waitFor } from './progress';

export type ServiceName = 'webhook' | 'builder' | 'reconciler' | 'shoot-pool';

export interface RunningService {
  name: ServiceName;
  /** `http://127.0.0.1:PORT`: the service's HTTP API and probes. */
  url: string;
  /** `127.0.0.1:PORT` of its gRPC server, for the services that have one. */
  grpcAddress?: string;
  process: ServiceProcess;
}

// What a service needs from the user's environment: nix and the guest image cache live
// under HOME; nothing else leaks in, so the stack runs on its own configuration.
const INHERITED_ENV = ['HOME', 'USER', 'TMPDIR', 'XDG_CACHE_HOME'];

/** The built entry point of a service; each app is a workspace dependency of the CLI. */
function serviceScript(name: ServiceName): string {
  return path.join(path.dirname(require.resolve(`@seed/${name}/package.json`)), 'dist/main.js');
}

/** The port variables each service reads, so every port comes from this run's free ones. */
function portEnv(
  name: ServiceName,
  host: string,
  http: number,
  grpc: number,
): Record<string, string> {
  switch (name) {
    case 'webhook':
      return { SEED_WEBHOOK_HOST: host, SEED_WEBHOOK_PORT: String(http) };
    case 'builder':
      return { SEED_BUILDER_HOST: host, SEED_BUILDER_PORT: String(http) };
    case 'reconciler':
      return {
        SEED_RECONCILER_HOST: host,
        SEED_RECONCILER_HTTP_PORT: String(http),
        SEED_RECONCILER_GRPC_PORT: String(grpc),
      };
    case 'shoot-pool':
      return {
        SEED_SHOOT_HOST: host,
        SEED_SHOOT_PORT: String(http),
        SEED_SHOOT_GRPC_PORT: String(grpc),
      };
  }
}

/**
 * The platform on loopback: Redis, a real kube-apiserver with etcd and a node, and the four services
 * as separate processes, the way they run in a cluster. `stop()` ends everything that was
 * started, newest first, whatever state a failed start left behind.
 */
export class LocalStack {
  readonly services = new Map<ServiceName, RunningService>();
  readonly #stops: (() => Promise<void>)[] = [];

  constructor(
    private readonly signal: AbortSignal,
    /** Each service's output goes to `<logDir>/<name>.log` too. */
    private readonly logDir: string,
  ) {}

  /** Redis with the services' ACL users, as deployed. */
  async startRedis(): Promise<LocalRedis> {
    const redis = await startRedis(redisAclUsers());
    this.#stops.push(() => redis.dispose());
    return redis;
  }

  /** The builder's nix-daemon: its own store and socket under `dir`, sandboxed builds. */
  async startNixDaemon(dir: string): Promise<LocalNixDaemon> {
    const daemon = await startNixDaemon({ dir });
    this.#stops.push(() => daemon.dispose());
    return daemon;
  }

  /** A kube-apiserver with etcd and a real node registered to it. */
  async startCluster(options: NodeOptions): Promise<LocalCluster> {
    const cluster = await startLocalCluster(options);
    this.#stops.push(() => cluster.stop());
    return cluster;
  }

  /** Debian's Prometheus scraping `targets`, with Seed's alert rules. */
  async startPrometheus(
    targets: readonly ScrapeTarget[],
    ruleFiles: readonly string[],
  ): Promise<LocalPrometheus> {
    const prometheus = await startPrometheus({ targets, ruleFiles });
    this.#stops.push(() => prometheus.stop());
    return prometheus;
  }

  /** Spawns the service; `ready()` waits for its `/readyz`. */
  async startService(
    name: ServiceName,
    env: Record<string, string>,
    options: {
      stopGraceMs: number;
      /** Ports chosen beforehand (a URL others were given); default: free ones. */
      ports?: [http: number, grpc: number];
      /** Where it listens; default 127.0.0.1. */
      host?: string;
    },
  ): Promise<RunningService> {
    const [http, grpc] = options.ports ?? ((await freeLoopbackPorts(2)) as [number, number]);
    const host = options.host ?? '127.0.0.1';
    const inherited = Object.fromEntries(
      INHERITED_ENV.flatMap((key) => (process.env[key] ? [[key, process.env[key]]] : [])),
    );
    const child = startServiceProcess(
      serviceScript(name),
      { ...inherited, SEED_LOG_LEVEL: 'info', ...env, ...portEnv(name, host, http, grpc) },
      { logFile: path.join(this.logDir, `${name}.log`) },
    );
    this.#stops.push(async () => {
      const how = await child.stop(options.stopGraceMs);
      if (how.startsWith('killed')) throw new Error(`the ${name} was ${how}`);
    });
    const service: RunningService = {
      name,
      url: `http://${host}:${http}`,
      ...((name === 'reconciler' || name === 'shoot-pool') && {
        grpcAddress: `${host}:${grpc}`,
      }),
      process: child,
    };
    this.services.set(name, service);
    return service;
  }

  /** Resolves once the service answers `/readyz` with 200; fails if it exits first. */
  async ready(service: RunningService, timeoutMs: number): Promise<void> {
    let exited: string | undefined;
    void service.process.exited.then(({ code, signal }) => {
      exited = `exited (${signal ?? code}) while starting`;
    });
    await waitFor(
      `for the ${service.name} to become ready`,
      async () => {
        if (exited !== undefined) throw new Error(`the ${service.name} ${exited}${tail(service)}`);
        const response = await fetch(`${service.url}/readyz`).catch(() => undefined);
        return response?.ok === true ? true : undefined;
      },
      { timeoutMs, signal: this.signal, intervalMs: 100 },
    ).catch((error: Error) => {
      throw new Error(`${error.message}${exited === undefined ? tail(service) : ''}`);
    });
  }

  /** Throws, with what it said last, if a started service has exited. */
  assertRunning(): void {
    for (const service of this.services.values()) {
      if (service.process.hasExited()) {
        const { exitCode, signalCode } = service.process.child;
        throw new Error(`the ${service.name} exited (${signalCode ?? exitCode})${tail(service)}`);
      }
    }
  }

  service(name: ServiceName): RunningService {
    const service = this.services.get(name);
    if (!service) throw new Error(`the ${name} was not started`);
    return service;
  }

  /** Stops everything, newest first; errors are collected, never stop the rest. */
  async stop(): Promise<string[]> {
    const problems: string[] = [];
    for (const stop of this.#stops.splice(0).reverse()) {
      await stop().catch((error: Error) => problems.push(error.message));
    }
    return problems;
  }
}

/** What a service said last, for an error message: stderr, else its last log lines. */
function tail(service: RunningService): string {
  const stderr = service.process.stderr().trim();
  const lines = stderr
    ? stderr.split('\n').slice(-15)
    : service.process.logs.slice(-15).map((line) => JSON.stringify(line));
  return lines.length > 0 ? `\n      ${lines.join('\n      ')}` : '';
}
