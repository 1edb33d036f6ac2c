import type { DeliveryRecord, RecordedBuild } from '@seed/builds-queue';
import type { BuildJob, Forge } from '@seed/contracts';
import type { Logger } from '@seed/service-kit';
import {
  DeliveryRejected,
  deliveryIdOf,
  detectForge,
  eventName,
  normalizeEvent,
  parseBody,
  signatureMatches,
  signatureOf,
  type Headers,
  type NormalizedEvent,
} from './deliveries';
import type { FlakeRegistry, RegisteredFlake } from './flake-registry';
import type { WebhookMetrics } from './metrics';

export interface IncomingDelivery {
  headers: Headers;
  contentType?: string;
  body: Buffer;
  /** `refresh` is the original Seed's URL, which only ever took GitHub's format. */
  route: 'webhook' | 'refresh';
}

export interface DeliveryAnswer {
  status: 200 | 202;
  body: Record<string, unknown>;
}

/** Redis could not take the work: the forge must record a failure and resend. */
export class QueueUnavailable extends Error {
  override readonly name = 'QueueUnavailable';
}

/** The Redis side of a delivery (BuildsQueueProducer). */
export interface BuildsQueue {
  queue(forge: Forge, deliveryId: string, builds: readonly BuildJob[]): Promise<DeliveryRecord>;
}

interface QueuedBuild extends RecordedBuild {
  flake: string;
  commit: string;
}

type Push = Extract<NormalizedEvent, { kind: 'push' }>;

/** A verified delivery that may deploy: who sent it, what it says, and the flakes it signed for. */
interface VerifiedDelivery {
  forge: Forge;
  deliveryId: string;
  event: NormalizedEvent;
  flakes: RegisteredFlake[];
  log: Logger;
}

/**
 * Turns one forge delivery into at most one queued build per registered flake: checks
 * who sent it, what it says and whether it was seen before, and answers only once the
 * builds are persisted.
 */
export class WebhookService {
  constructor(
    private readonly registry: FlakeRegistry,
    private readonly builds: BuildsQueue,
    private readonly metrics: WebhookMetrics,
    private readonly logger: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async receive(delivery: IncomingDelivery): Promise<DeliveryAnswer> {
    const forge = detectForge(delivery.headers);
    const event = forge ? eventName(forge, delivery.headers) : 'unknown';
    const count = (outcome: string) =>
      this.metrics.deliveries.inc({ forge: forge ?? 'unknown', event: eventLabel(event), outcome });
    try {
      const answer = await this.handle(delivery, forge, event);
      count(String(answer.body.status));
      return answer;
    } catch (error) {
      count(
        error instanceof DeliveryRejected
          ? error.reason
          : error instanceof QueueUnavailable
            ? 'unavailable'
            : 'error',
      );
      throw error;
    }
  }

  /** Answers at once what needs no Redis; only a deploying push goes on to `enqueue`. */
  private handle(
    delivery: IncomingDelivery,
    forge: Forge | undefined,
    event: string,
  ): DeliveryAnswer | Promise<DeliveryAnswer> {
    const verified = this.verify(delivery, forge, event);
    if (!('flakes' in verified)) return verified;
    const { deliveryId, log } = verified;
    if (verified.event.kind === 'ping') return answer(200, { status: 'pong', deliveryId });

    const skip = whyNotDeploy(verified.event);
    if (skip) {
      log.info({ reason: skip }, 'delivery ignored');
      return answer(202, { status: 'ignored', reason: skip, deliveryId, jobs: [] });
    }
    const push = verified.event as Push;
    const branch = push.ref.slice('refs/heads/'.length);
    const deploying = verified.flakes.filter(
      (flake) => (flake.branch ?? push.repository.defaultBranch) === branch,
    );
    if (deploying.length === 0) {
      log.info({ branch }, 'push to a branch no flake deploys');
      const reason = `no flake deploys branch "${branch}"`;
      return answer(202, { status: 'ignored', reason, deliveryId, jobs: [] });
    }
    return this.enqueue(verified, push, deploying);
  }

  /**
   * Reads and authenticates a delivery. Answers directly what needs no flake (a ping or a
   * push for a repository Seed does not serve); otherwise returns the flakes whose secret
   * signed it, refusing it when none did.
   */
  private verify(
    delivery: IncomingDelivery,
    forge: Forge | undefined,
    event: string,
  ): VerifiedDelivery | DeliveryAnswer {
    if (!forge) {
      throw new DeliveryRejected(
        'malformed',
        'no X-GitHub-Event, X-Gitea-Event, X-Forgejo-Event or X-Gitlab-Event header: not a forge delivery',
      );
    }
    if (delivery.route === 'refresh' && forge !== 'github') {
      throw new DeliveryRejected(
        'malformed',
        'POST /refresh takes GitHub deliveries; send others to POST /webhook',
      );
    }
    const signature = signatureOf(forge, delivery.headers);
    if (!signature) {
      const header = SIGNATURE_HEADERS[forge];
      throw new DeliveryRejected('unauthorized', `the delivery is not signed (${header})`);
    }
    const deliveryId = deliveryIdOf(forge, delivery.headers, delivery.body);
    const normalized = normalizeEvent(forge, event, parseBody(delivery.contentType, delivery.body));
    const log = this.logger.child({ deliveryId, forge, event });

    const candidates = normalized.repository ? this.registry.following(normalized.repository) : [];
    if (candidates.length === 0) {
      if (normalized.kind === 'ping') return answer(200, { status: 'pong', deliveryId });
      const repository = normalized.repository?.names[0];
      log.info({ repository }, 'delivery for an unregistered repository');
      return answer(202, { status: 'unknown_repository', deliveryId, jobs: [] });
    }
    // Every candidate's secret is checked, each in constant time.
    const flakes = candidates.filter((flake) =>
      signatureMatches(signature, delivery.body, flake.secret),
    );
    if (flakes.length === 0) {
      throw new DeliveryRejected(
        'unauthorized',
        'the signature does not match the secret of any flake of this repository',
      );
    }
    return { forge, deliveryId, event: normalized, flakes, log };
  }

  /**
   * Records the delivery, then stores the builds it queues: two Redis round trips,
   * whatever the number of flakes. The answer waits for both, so a 2xx always means the
   * builds are in Redis; a failure after recording is repaired by the forge's resend.
   */
  private async enqueue(
    { forge, deliveryId, log }: VerifiedDelivery,
    push: Push,
    flakes: RegisteredFlake[],
  ): Promise<DeliveryAnswer> {
    const receivedAt = this.now().toISOString();
    const builds: BuildJob[] = flakes.map(({ flake }) => ({
      flake,
      commit: push.after!,
      ref: push.ref,
      forge,
      deliveryId,
      receivedAt,
    }));

    const stopTimer = this.metrics.enqueueSeconds.startTimer();
    const record = await this.persist(forge, deliveryId, builds, log);
    stopTimer();
    if (record.duplicate) {
      log.info({ jobs: record.jobIds }, 'delivery already received');
      const jobs = record.jobIds.map((jobId) => ({ jobId }));
      return answer(200, { status: 'duplicate', deliveryId, jobs });
    }

    const queued: QueuedBuild[] = builds.map((build, index) => ({
      flake: build.flake,
      commit: build.commit,
      ...record.builds[index]!,
    }));
    log.info({ jobs: queued }, 'builds queued');
    return answer(202, { status: 'queued', deliveryId, jobs: queued });
  }

  /** Queues the delivery's builds; any Redis failure becomes a 503 the forge will retry. */
  private async persist(
    forge: Forge,
    deliveryId: string,
    builds: BuildJob[],
    log: Logger,
  ): Promise<DeliveryRecord> {
    try {
      return await this.builds.queue(forge, deliveryId, builds);
    } catch (error) {
      log.warn({ err: error }, 'Redis did not take the delivery');
      throw new QueueUnavailable(`the build queue is unavailable: ${(error as Error).message}`);
    }
  }
}

const SIGNATURE_HEADERS: Record<Forge, string> = {
  github: 'X-Hub-Signature-256',
  gitea: 'X-Gitea-Signature',
  forgejo: 'X-Forgejo-Signature',
  gitlab: 'X-Gitlab-Token',
};

function answer(status: 200 | 202, body: Record<string, unknown>): DeliveryAnswer {
  return { status, body };
}

/** Event names come from the sender: only known ones become label values. */
function eventLabel(event: string): string {
  if (event === 'push' || event === 'Push Hook') return 'push';
  if (event === 'ping') return 'ping';
  if (event === 'Tag Push Hook') return 'tag_push';
  return 'other';
}

function whyNotDeploy(event: NormalizedEvent): string | undefined {
  if (event.kind === 'other') return `event "${event.name}" does not deploy`;
  if (event.kind !== 'push') return undefined;
  if (!event.ref.startsWith('refs/heads/')) return `push to ${event.ref} is not a branch push`;
  if (event.after === undefined) return `push deleted ${event.ref}`;
  return undefined;
}
