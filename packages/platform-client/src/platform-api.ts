import * as grpc from '@grpc/grpc-js';
import {
  buildListSchema,
  buildRecordSchema,
  createReconcilerClient,
  platformChannelCredentials,
  shootAnswerSchema,
  type BuildRecord,
  type BuildSummary,
  type ApplyGenerationResponse__Output,
  type FlakeStatus__Output,
  type ShootAnswer,
  type ShootRequestBody,
  type TlsDirectory,
} from '@seed/contracts';
import { z } from 'zod';

/** A service could not be asked, or answered with an error: the message says which and why. */
export class PlatformError extends Error {
  override readonly name = 'PlatformError';
}

/** GET/POST JSON, turning refused connections and error answers into PlatformErrors. */
async function requestJson<T>(
  service: { name: string; urlVariable: string },
  url: string,
  schema: z.ZodType<T>,
  init: RequestInit = {},
): Promise<T> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, signal: init.signal ?? AbortSignal.timeout(30_000) });
  } catch (error) {
    const cause = (error as Error & { cause?: Error }).cause?.message ?? (error as Error).message;
    throw new PlatformError(
      `cannot reach the ${service.name} at ${new URL(url).origin}: ${cause} (is it running? set ${service.urlVariable})`,
    );
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new PlatformError(
      `the ${service.name} answered ${response.status} with a body that is not JSON: ${text.slice(0, 200)}`,
    );
  }
  if (!response.ok) {
    const reason = (body as { error?: unknown }).error;
    throw new PlatformError(
      `the ${service.name} answered ${response.status}: ${typeof reason === 'string' ? reason : text.slice(0, 200)}`,
    );
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    throw new PlatformError(
      `the ${service.name} answered something unexpected: ${z.prettifyError(parsed.error)}`,
    );
  }
  return parsed.data;
}

const BUILDER = { name: 'builder', urlVariable: 'SEED_BUILDER_URL' };
const SHOOT_POOL = { name: 'shoot pool', urlVariable: 'SEED_SHOOT_URL' };

/** The builder's HTTP API: build records and their logs, behind a bearer token. */
export class BuilderApi {
  private readonly init: RequestInit;

  constructor(
    private readonly baseUrl: string,
    token: string | undefined,
  ) {
    if (token === undefined) {
      throw new PlatformError(
        "the builder's API needs its token: set SEED_BUILDER_API_TOKEN_FILE to the file holding it",
      );
    }
    this.init = { headers: { authorization: `Bearer ${token}` } };
  }

  /** Newest first; every flake's when `flake` is undefined. */
  async list(options: { flake?: string; limit?: number } = {}): Promise<BuildSummary[]> {
    const query = new URLSearchParams();
    if (options.flake !== undefined) query.set('flake', options.flake);
    if (options.limit !== undefined) query.set('limit', String(options.limit));
    const { builds } = await requestJson(
      BUILDER,
      `${this.baseUrl}/builds?${query.toString()}`,
      buildListSchema,
      this.init,
    );
    return builds;
  }

  get(id: string): Promise<BuildRecord> {
    return requestJson(
      BUILDER,
      `${this.baseUrl}/builds/${encodeURIComponent(id)}`,
      buildRecordSchema,
      this.init,
    );
  }
}

/** The shoot pool's HTTP API, as an instance calls it: with its pod's token. */
export class ShootApi {
  constructor(
    private readonly baseUrl: string,
    private readonly token?: string,
  ) {}

  run(request: ShootRequestBody & { timeout: number }, signal?: AbortSignal): Promise<ShootAnswer> {
    // The command's own timeout, plus time to wait for a free VM.
    const deadline = AbortSignal.timeout(request.timeout + 60_000);
    return requestJson(SHOOT_POOL, `${this.baseUrl}/shoot`, shootAnswerSchema, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(this.token !== undefined && { authorization: `Bearer ${this.token}` }),
      },
      body: JSON.stringify(request),
      signal: signal ? AbortSignal.any([signal, deadline]) : deadline,
    });
  }
}

/** The reconciler's gRPC status calls. */
export class ReconcilerApi {
  private readonly client;

  constructor(
    private readonly address: string,
    tls: TlsDirectory | undefined,
    private readonly deadlineMs = 15_000,
  ) {
    if (tls === undefined) {
      throw new PlatformError(
        "the reconciler answers only the platform's certificates: set SEED_TLS_DIR to a folder with the operator's tls.crt, tls.key and ca.crt",
      );
    }
    // A command lives for seconds: the files are read once.
    this.client = createReconcilerClient(address, platformChannelCredentials(tls, 60_000));
  }

  status(flakeUri: string): Promise<FlakeStatus__Output> {
    return new Promise((resolve, reject) =>
      this.client.getStatus({ flakeUri }, this.callOptions(), (error, reply) =>
        error ? reject(this.failure(error)) : resolve(reply!),
      ),
    );
  }

  /** Applies a kept generation again (`to`: its hash or commit prefix; empty: the previous). */
  rollback(flakeUri: string, to: string): Promise<ApplyGenerationResponse__Output> {
    return new Promise((resolve, reject) =>
      this.client.rollback({ flakeUri, to }, this.callOptions(), (error, reply) =>
        error ? reject(this.failure(error)) : resolve(reply!),
      ),
    );
  }

  list(): Promise<FlakeStatus__Output[]> {
    return new Promise((resolve, reject) =>
      this.client.listStatus({}, this.callOptions(), (error, reply) =>
        error ? reject(this.failure(error)) : resolve(reply!.flakes),
      ),
    );
  }

  close(): void {
    this.client.close();
  }

  private callOptions(): grpc.CallOptions {
    return { deadline: Date.now() + this.deadlineMs };
  }

  private failure(error: grpc.ServiceError): PlatformError {
    // The reconciler itself answers UNAVAILABLE when the API server fails it (over a
    // connected channel); only a call that never got an answer means it cannot be reached.
    const connected =
      this.client.getChannel().getConnectivityState(false) === grpc.connectivityState.READY;
    const unanswered =
      error.code === grpc.status.DEADLINE_EXCEEDED ||
      (error.code === grpc.status.UNAVAILABLE && !connected);
    if (unanswered) {
      return new PlatformError(
        `cannot reach the reconciler at ${this.address}: ${error.details} (is it running? set SEED_RECONCILER_ADDRESS)`,
      );
    }
    return new PlatformError(
      `the reconciler answered ${grpc.status[error.code]}: ${error.details}`,
    );
  }
}
