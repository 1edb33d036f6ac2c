import * as grpc from '@grpc/grpc-js';
import {
  createReconcilerClient,
  platformChannelCredentials,
  type ApplyGenerationRequest,
  type ApplyGenerationResponse__Output,
  type FlakeStatus__Output,
  type ReconcilerClient,
  type TlsDirectory,
} from '@seed/contracts';

/** The reconciler refused the generation: retrying the same request cannot help. */
export class GenerationRejected extends Error {
  override readonly name = 'GenerationRejected';
}

/** The reconciler did not answer in time, every attempt: the build may be retried later. */
export class ReconcilerUnavailable extends Error {
  override readonly name = 'ReconcilerUnavailable';
}

const TRANSIENT = new Set([
  grpc.status.UNAVAILABLE,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.ABORTED,
  // A reconciler shutting down cancels the calls it could not finish.
  grpc.status.CANCELLED,
]);

export interface ReconcilerClientOptions {
  /** The builder's client certificate and the platform CA, re-read every `reloadMs`. */
  tls: { files: TlsDirectory; reloadMs: number };
  deadlineMs: number;
  attempts: number;
  /** First pause between attempts; it doubles each time. */
  backoffMs: number;
}

/** `seed.v1.Reconciler` as the builder calls it: a deadline per call, backoff between tries. */
export class ReconcilerGrpcClient {
  private readonly client: ReconcilerClient;

  constructor(
    address: string,
    private readonly options: ReconcilerClientOptions,
  ) {
    // Reconnect quickly once the reconciler is back instead of grpc-js's default of
    // backing off towards two minutes: a build is waiting on it.
    const credentials = platformChannelCredentials(options.tls.files, options.tls.reloadMs);
    this.client = createReconcilerClient(address, credentials, {
      'grpc.initial_reconnect_backoff_ms': 250,
      'grpc.max_reconnect_backoff_ms': 5_000,
    });
  }

  async applyGeneration(
    request: ApplyGenerationRequest,
    signal?: AbortSignal,
    onRetry?: (attempt: number, error: grpc.ServiceError) => void,
  ): Promise<ApplyGenerationResponse__Output> {
    return this.retried(
      () =>
        this.unary<ApplyGenerationResponse__Output>(
          (options, done) => this.client.applyGeneration(request, options, done),
          signal,
        ),
      (error) => {
        if (TRANSIENT.has(error.code)) return undefined;
        throw new GenerationRejected(
          `the reconciler refused the generation: ${error.details || error.message}`,
        );
      },
      'take the generation',
      signal,
      onRetry,
    );
  }

  /**
   * The revision the reconciler last applied for the flake (GetStatus), or undefined when
   * it never applied one. Any failure but NOT_FOUND counts as unavailable, retried as
   * ApplyGeneration is: the build waits for the answer rather than deploying blind.
   */
  async appliedRevision(
    flakeUri: string,
    signal?: AbortSignal,
    onRetry?: (attempt: number, error: grpc.ServiceError) => void,
  ): Promise<string | undefined> {
    return this.retried<string | undefined>(
      async () => {
        const status = await this.unary<FlakeStatus__Output>(
          (options, done) => this.client.getStatus({ flakeUri }, options, done),
          signal,
        );
        return status.revision === '' ? undefined : status.revision;
      },
      (error) => (error.code === grpc.status.NOT_FOUND ? { answer: undefined } : undefined),
      "tell the flake's applied revision",
      signal,
      onRetry,
    );
  }

  /**
   * Calls until it answers, backing off between tries; `settle` makes an answer of a
   * failure, throws it, or returns undefined to try again. After the last try: unavailable.
   */
  private async retried<T>(
    call: () => Promise<T>,
    settle: (error: grpc.ServiceError) => { answer: T } | undefined,
    what: string,
    signal: AbortSignal | undefined,
    onRetry: ((attempt: number, error: grpc.ServiceError) => void) | undefined,
  ): Promise<T> {
    let lastError: grpc.ServiceError | undefined;
    for (let attempt = 1; attempt <= this.options.attempts; attempt += 1) {
      signal?.throwIfAborted();
      try {
        return await call();
      } catch (error) {
        const serviceError = error as grpc.ServiceError;
        const settled = settle(serviceError);
        if (settled) return settled.answer;
        lastError = serviceError;
        signal?.throwIfAborted();
        if (attempt < this.options.attempts) {
          onRetry?.(attempt, serviceError);
          await pause(this.options.backoffMs * 2 ** (attempt - 1), signal);
        }
      }
    }
    throw new ReconcilerUnavailable(
      `the reconciler did not ${what} after ${this.options.attempts} attempts: ${lastError?.details || lastError?.message}`,
    );
  }

  close(): void {
    this.client.close();
  }

  /** One call; an abort cancels it, so a worker handing its jobs back never waits on it. */
  private unary<T>(
    start: (options: grpc.CallOptions, done: grpc.requestCallback<T>) => grpc.ClientUnaryCall,
    signal?: AbortSignal,
  ): Promise<T> {
    return new Promise((resolve, reject) => {
      const cancel = () => call.cancel();
      const call = start({ deadline: Date.now() + this.options.deadlineMs }, (error, response) => {
        signal?.removeEventListener('abort', cancel);
        if (error) reject(error);
        else resolve(response!);
      });
      signal?.addEventListener('abort', cancel, { once: true });
    });
  }
}

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason as Error);
      },
      { once: true },
    );
  });
}
