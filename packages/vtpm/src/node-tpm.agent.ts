import { TPM_KEYS, readTpmReport, tpmRequestName } from '@seed/contracts';
import { LABEL_INSTANCE } from '@seed/k8s-model';
import type { InstanceKey, VtpmStore } from './vtpm-store';

/** A TPM request as the agent reads it: a ConfigMap's identity, labels and data. */
export interface TpmRequest {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  data: Record<string, string>;
  resourceVersion: string;
}

/** The cluster's TPM requests (tpm-requests.repository.ts). */
export interface TpmRequests {
  list(): Promise<TpmRequest[]>;
  /**
   * Merges `data` into the request; `guarded`: only over the version read (a claim).
   * False when someone else wrote it first, or it is gone.
   */
  write(request: TpmRequest, data: Record<string, string>, guarded: boolean): Promise<boolean>;
}

export interface NodeTpmAgentOptions {
  /** The node this agent runs on: the name its pods are pinned to (`metadata.name`). */
  nodeName: string;
  /** Take unclaimed requests; false on a node that keeps its TPMs but takes no new ones. */
  claim: boolean;
}

export interface AgentLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

/** A flake namespace: `s-` and 12 base32 characters (docs/contracts.md). */
const FLAKE_NAMESPACE = /^s-[a-z2-7]{12}$/;
const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** What one pass did, for logs and tests. */
export interface SyncResult {
  claimed: InstanceKey[];
  ready: InstanceKey[];
  failed: { instance: InstanceKey; error: string }[];
  invalid: { namespace: string; name: string; why: string }[];
  removed: InstanceKey[];
}

/**
 * The node's side of "a TPM per instance": claims TPM requests nobody holds yet, keeps one
 * swtpm for each request this node holds (VtpmStore.reconcile: started, adopted after a
 * restart, restarted after its VM shut it down, removed a grace period after its request
 * went away), and reports on each request whether the TPM is ready and where its control
 * socket is, or why not. Level-based: each pass reads every request fresh.
 *
 * Which instance a request is for comes only from the ConfigMap's own namespace and its
 * `seed.loom.farm/instance` label, which must agree with its name and `data.instance`;
 * nothing in it can name another namespace's TPM.
 */
export class NodeTpmAgent {
  constructor(
    private readonly requests: TpmRequests,
    private readonly store: Pick<VtpmStore, 'reconcile'>,
    private readonly options: NodeTpmAgentOptions,
    private readonly logger: AgentLogger,
  ) {}

  async sync(): Promise<SyncResult> {
    const result: SyncResult = { claimed: [], ready: [], failed: [], invalid: [], removed: [] };
    const mine: { request: TpmRequest; instance: InstanceKey }[] = [];
    for (const request of await this.requests.list()) {
      const report = readTpmReport(request.data);
      if (report.node !== undefined && report.node !== this.options.nodeName) continue;
      const why = invalidRequest(request);
      if (report.node === undefined) {
        if (!this.options.claim) continue;
        // Of two agents claiming one request, the API server lets only the first write.
        const claimed = await this.requests.write(
          request,
          { [TPM_KEYS.node]: this.options.nodeName, [TPM_KEYS.ready]: 'false' },
          true,
        );
        if (!claimed) continue;
        if (!why) result.claimed.push(keyOf(request));
      }
      if (why) {
        result.invalid.push({ namespace: request.namespace, name: request.name, why });
        await this.report(request, { ready: 'false', reason: 'InvalidRequest', message: why });
        continue;
      }
      mine.push({ request, instance: keyOf(request) });
    }

    const outcome = await this.store.reconcile(mine.map(({ instance }) => instance));
    result.removed = outcome.removed;
    for (const { request, instance } of mine) {
      const ready = outcome.ready.find((status) => same(status.instance, instance));
      const failed = outcome.failed.find((failure) => same(failure.instance, instance));
      if (ready) {
        result.ready.push(instance);
        await this.report(request, {
          ready: 'true',
          ctrlSocket: ready.ctrlSocket,
          reason: '',
          message: '',
          ...(ready.recipient !== undefined && { recipient: ready.recipient }),
        });
      } else if (failed) {
        result.failed.push(failed);
        await this.report(request, { ready: 'false', reason: 'TpmFailed', message: failed.error });
      }
    }
    if (
      result.claimed.length +
      result.failed.length +
      result.invalid.length +
      result.removed.length
    )
      this.logger.info(
        {
          claimed: result.claimed.length,
          failed: result.failed.map(({ instance, error }) => ({ ...instance, error })),
          invalid: result.invalid,
          removed: result.removed,
        },
        'TPMs reconciled',
      );
    return result;
  }

  /** Writes the agent's keys when they differ from what the request holds. */
  private async report(
    request: TpmRequest,
    fields: Partial<Record<keyof typeof TPM_KEYS, string>>,
  ): Promise<void> {
    const data = Object.fromEntries(
      Object.entries(fields).map(([key, value]) => [TPM_KEYS[key as keyof typeof TPM_KEYS], value]),
    );
    const current: Record<string, string> = {
      ...request.data,
      [TPM_KEYS.node]: this.options.nodeName,
    };
    if (Object.entries(data).every(([key, value]) => (current[key] ?? '') === value)) return;
    await this.requests.write(request, { ...data, [TPM_KEYS.node]: this.options.nodeName }, false);
  }

  /** Runs `sync` every `intervalMs` until `stop`; a failed pass is logged and retried. */
  start(intervalMs: number): { stop(): Promise<void> } {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let running: Promise<void> = Promise.resolve();
    const pass = () => {
      running = this.sync().then(
        () => undefined,
        (error: Error) => this.logger.warn({ err: error }, 'TPM pass failed; trying again'),
      );
      void running.then(() => {
        if (!stopped) timer = setTimeout(pass, intervalMs);
      });
    };
    pass();
    return {
      stop: async () => {
        stopped = true;
        clearTimeout(timer);
        await running;
      },
    };
  }
}

function keyOf(request: TpmRequest): InstanceKey {
  return { namespace: request.namespace, name: request.labels[LABEL_INSTANCE] ?? '' };
}

function same(a: InstanceKey, b: InstanceKey): boolean {
  return a.namespace === b.namespace && a.name === b.name;
}

/** Why a request cannot be served, or undefined when it can. */
function invalidRequest(request: TpmRequest): string | undefined {
  if (!FLAKE_NAMESPACE.test(request.namespace))
    return `namespace ${JSON.stringify(request.namespace)} is not a flake namespace`;
  const instance = request.labels[LABEL_INSTANCE];
  if (instance === undefined || !LABEL.test(instance))
    return `instance label ${JSON.stringify(instance ?? '')} is not a DNS label`;
  if (request.name !== tpmRequestName(instance))
    return `a request for instance ${instance} must be named ${tpmRequestName(instance)}`;
  if (request.data[TPM_KEYS.instance] !== instance)
    return `data.instance ${JSON.stringify(request.data[TPM_KEYS.instance] ?? '')} differs from the instance label ${instance}`;
  return undefined;
}
