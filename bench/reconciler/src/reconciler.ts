// The real reconciler (apps/reconciler/dist/main.js) as a process of its own, called over
// gRPC the way the builder calls it, and read through its /metrics.
import * as grpc from '@grpc/grpc-js';
import {
  createReconcilerClient,
  platformChannelCredentials,
  readTlsDirectory,
  type ApplyGenerationRequest,
  type ApplyGenerationResponse__Output,
  type ReconcilerClient,
} from '@seed/contracts';
import { startServiceProcess, type PlatformCertificates, type ServiceProcess } from '@seed/testing';

export interface ReconcilerOptions {
  main: string;
  kubeconfigPath: string;
  grpcPort: number;
  httpPort: number;
  /** The platform CA: the reconciler serves its certificate, the bench calls as builder and operator. */
  certificates: PlatformCertificates;
  /** Extra SEED_* variables. */
  env?: Record<string, string>;
}

/** Prometheus samples by `name{labels}`. */
export type Samples = Map<string, number>;

export class ReconcilerProcess {
  /** Calls as the builder does (ApplyGeneration). */
  readonly client: ReconcilerClient;
  /** Reads status as an operator (the readiness check). */
  private readonly operator: ReconcilerClient;
  private readonly metricsUrl: string;

  private constructor(
    readonly service: ServiceProcess,
    options: ReconcilerOptions,
  ) {
    this.metricsUrl = `http://127.0.0.1:${options.httpPort}/metrics`;
    // Reconnect fast while the process starts, rather than grpc-js's backoff from 1 s.
    const client = (tlsDir: string) =>
      createReconcilerClient(
        `127.0.0.1:${options.grpcPort}`,
        platformChannelCredentials(readTlsDirectory(tlsDir), 60_000),
        { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 500 },
      );
    this.client = client(options.certificates.builder);
    this.operator = client(options.certificates.operator);
  }

  static start(options: ReconcilerOptions): ReconcilerProcess {
    const service = startServiceProcess(options.main, {
      SEED_KUBECONFIG: options.kubeconfigPath,
      SEED_TLS_DIR: options.certificates.reconciler,
      SEED_RECONCILER_GRPC_PORT: String(options.grpcPort),
      SEED_RECONCILER_HTTP_PORT: String(options.httpPort),
      // Log lines would be parsed by this process, on the cores the API server uses.
      SEED_LOG_LEVEL: 'warn',
      ...options.env,
    });
    return new ReconcilerProcess(service, options);
  }

  /**
   * Resolves once a GetStatus call reaches the reconciler and it answers from the cluster
   * (NOT_FOUND for a flake it never saw), and its /metrics answers.
   */
  async ready(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.service.hasExited())
        throw new Error(`the reconciler exited: ${this.service.stderr()}`);
      const code = await new Promise<grpc.status>((resolve) =>
        this.operator.getStatus(
          { flakeUri: 'github:seed-bench/never-applied' },
          { deadline: Date.now() + 1_000 },
          (error) => resolve(error ? error.code : grpc.status.OK),
        ),
      );
      if (code === grpc.status.NOT_FOUND || code === grpc.status.OK) {
        const metrics = await fetch(this.metricsUrl).catch(() => undefined);
        if (metrics?.ok) return;
      }
      if (Date.now() > deadline) {
        throw new Error(`the reconciler was not ready in ${timeoutMs} ms (last status ${code})`);
      }
      await sleep(50);
    }
  }

  apply(
    request: ApplyGenerationRequest,
    deadlineMs = 120_000,
  ): Promise<ApplyGenerationResponse__Output> {
    return new Promise((resolve, reject) =>
      this.client.applyGeneration(request, { deadline: Date.now() + deadlineMs }, (error, reply) =>
        error ? reject(error) : resolve(reply!),
      ),
    );
  }

  async metrics(): Promise<Samples> {
    const response = await fetch(this.metricsUrl);
    if (!response.ok) throw new Error(`GET /metrics: ${response.status}`);
    const samples: Samples = new Map();
    for (const line of (await response.text()).split('\n')) {
      if (!line.startsWith('seed_reconciler_')) continue;
      const space = line.lastIndexOf(' ');
      samples.set(line.slice(0, space), Number(line.slice(space + 1)));
    }
    return samples;
  }

  /**
   * Waits until the reconciler is idle: an empty queue and no reconcile finished for
   * `quietMs` (the informers' events queue the flakes just applied once more). Resolves
   * with the `performance.now()` at which the last change was seen.
   */
  async settle(quietMs = 400, timeoutMs = 60_000): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    let last = -1;
    let since = performance.now();
    for (;;) {
      const samples = await this.metrics();
      const reconciles = sum(samples, 'seed_reconciler_reconcile_duration_seconds_count');
      const depth = sum(samples, 'seed_reconciler_queue_depth');
      if (reconciles !== last || depth > 0) {
        last = reconciles;
        since = performance.now();
      } else if (performance.now() - since >= quietMs) {
        return since;
      }
      if (performance.now() > deadline) {
        throw new Error(`the reconciler was still busy after ${timeoutMs} ms`);
      }
      await sleep(50);
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with how it ended. */
  async stop(graceMs = 15_000): Promise<string> {
    this.client.close();
    this.operator.close();
    return this.service.stop(graceMs);
  }
}

/** Sum of the samples of one metric (every label set); `filter` picks label sets. */
export function sum(samples: Samples, metric: string, filter = ''): number {
  let total = 0;
  for (const [key, value] of samples) {
    const name = key.split('{')[0];
    if (name === metric && key.includes(filter)) total += value;
  }
  return total;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
