import { QueueLimitReached, type DeliveryRecord, type RecordedBuild } from '@seed/builds-queue';
import { statusTargetOf, type BuildJob, type Forge } from '@seed/contracts';
import type { Logger } from '@seed/service-kit';
import {
  DeliveryRejected,
  claimedRepository,
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
  /**
   * Where it was sent: the shared URL, the original Seed's (`refresh`, which only ever
   * took GitHub's format), or one flake's own URL (`POST /hooks/<id>`), whose secret is
   * known before the body is read.
   */
  route: 'webhook' | 'refresh' | { hook: RegisteredFlake };
}

/**
 * What became of a delivery, and what the forge is told: `pong` and `duplicate` were
 * already done, `queued` and `ignored` were taken (the routes map each to a status).
 */
export type DeliveryOutcome = 'pong' | 'duplicate' | 'queued' | 'ignored';

export interface DeliveryAnswer {
  outcome: DeliveryOutcome;
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
    /** The registry as it is now: SeedFlakes come, change and go while the service runs. */
    private readonly registry: () => FlakeRegistry,
    private readonly builds: BuildsQueue,
    private readonly metrics: WebhookMetrics,
    private readonly logger: Logger,
    private readonly now: () => Date = () => new Date(),
    /** Hears of each build queued (the SeedFlake's last fetched revision). */
    private readonly onQueued: (flake: string, commit: string) => void = () => undefined,
  ) {}

  /** The flake whose own delivery URL has this id. */
  hook(hookId: string): RegisteredFlake | undefined {
    return this.registry().byHook(hookId);
  }

  async receive(delivery: IncomingDelivery): Promise<DeliveryAnswer> {
    const forge = detectForge(delivery.headers);
    const event = forge ? eventName(forge, delivery.headers) : 'unknown';
    const count = (outcome: string) =>
      this.metrics.deliveries.inc({ forge: forge ?? 'unknown', event: eventLabel(event), outcome });
    try {
      const answer = await this.handle(delivery, forge, event);
      count(answer.outcome);
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
    const { deliveryId, log } = verified;
    if (verified.event.kind === 'ping') return answer('pong', { deliveryId });

    const skip = whyNotDeploy(verified.event);
    if (skip) {
      log.info({ reason: skip }, 'delivery ignored');
      return answer('ignored', { reason: skip, deliveryId, jobs: [] });
    }
    const push = verified.event as Push;
    const branch = push.ref.slice('refs/heads/'.length);
    const deploying = verified.flakes.filter(
      (flake) => (flake.branch ?? push.repository.defaultBranch) === branch,
    );
    if (deploying.length === 0) {
      log.info({ branch }, 'push to a branch no flake deploys');
      const reason = `no flake deploys branch "${branch}"`;
      return answer('ignored', { reason, deliveryId, jobs: [] });
    }
    const suspended = deploying.filter((flake) => flake.suspended).map((flake) => flake.flake);
    if (suspended.length === deploying.length) {
      log.info({ suspended }, 'push to suspended flakes');
      const reason = 'every flake this push deploys is suspended (seed resume lifts it)';
      return answer('ignored', { reason, deliveryId, jobs: [], suspended });
    }
    return this.enqueue(
      verified,
      push,
      deploying.filter((flake) => !flake.suspended),
      suspended,
    );
  }

  /**
   * Reads and authenticates a delivery: the flakes whose secret signed it, refusing it
   * when none did.
   */
  private verify(
    delivery: IncomingDelivery,
    forge: Forge | undefined,
    event: string,
  ): VerifiedDelivery {
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
    if (typeof delivery.route === 'object') {
      const { hook } = delivery.route;
      // Authenticated before a byte of the body is parsed: an unsigned flood costs an HMAC.
      if (!signatureMatches(signature, delivery.body, hook.secret)) {
        throw new DeliveryRejected('unauthorized', NO_MATCHING_SECRET);
      }
      const { deliveryId, event: normalized, log } = this.read(delivery, forge, event);
      const repository = normalized.repository;
      if (repository && !repository.names.includes(hook.repository)) {
        throw new DeliveryRejected(
          'malformed',
          `the delivery is for ${repository.names[0]}; this hook deploys ${hook.flake} from ${hook.repository}`,
        );
      }
      return { forge, deliveryId, event: normalized, flakes: [hook], log };
    }

    // The shared URL learns which secrets to try from the repository the body names: only
    // that much is parsed before a signature matches (claimedRepository; the body limit
    // and the routes' cap on unverified deliveries bound the scan).
    const claimed = claimedRepository(forge, delivery.contentType, delivery.body);
    const candidates = claimed ? this.registry().following(claimed) : [];
    if (candidates.length === 0) {
      // The same answer, after about the same work, as a wrong signature: which
      // repositories Seed serves is not for an unauthenticated sender to learn.
      signatureMatches(signature, delivery.body, UNREGISTERED);
      this.logger.info(
        { forge, event, repository: claimed?.names[0] },
        'delivery for an unregistered repository',
      );
      throw new DeliveryRejected('unauthorized', NO_MATCHING_SECRET);
    }
    // Every candidate's secret is checked, each in constant time.
    const signed = candidates.filter((flake) =>
      signatureMatches(signature, delivery.body, flake.secret),
    );
    if (signed.length === 0) throw new DeliveryRejected('unauthorized', NO_MATCHING_SECRET);
    const { deliveryId, event: normalized, log } = this.read(delivery, forge, event);
    // The full parse decides: only flakes following the repository it names deploy.
    const flakes = signed.filter(
      (flake) => normalized.repository?.names.includes(flake.repository) ?? false,
    );
    if (flakes.length === 0) throw new DeliveryRejected('unauthorized', NO_MATCHING_SECRET);
    return { forge, deliveryId, event: normalized, flakes, log };
  }

  /** Decodes a delivery's body: its id, what it says, and a logger that names it. */
  private read(
    delivery: IncomingDelivery,
    forge: Forge,
    event: string,
  ): { deliveryId: string; event: NormalizedEvent; log: Logger } {
    const deliveryId = deliveryIdOf(forge, delivery.headers, delivery.body);
    const normalized = normalizeEvent(forge, event, parseBody(delivery.contentType, delivery.body));
    return { deliveryId, event: normalized, log: this.logger.child({ deliveryId, forge, event }) };
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
    suspended: string[],
  ): Promise<DeliveryAnswer> {
    const receivedAt = this.now().toISOString();
    const builds: BuildJob[] = flakes.map((flake) => ({
      flake: flake.flake,
      quota: flake.quota,
      ...(flake.forgeStatus && {
        forgeStatus: statusTargetOf(flake.forgeStatus, flake.repository),
      }),
      commit: push.after!,
      ref: push.ref,
      forge,
      deliveryId,
      receivedAt,
      // Only when true: the payload of an ordinary push stays as it was.
      ...(push.forced && { forced: true }),
    }));

    const stopTimer = this.metrics.enqueueSeconds.startTimer();
    const record = await this.persist(forge, deliveryId, builds, log);
    stopTimer();
    if (record.duplicate) {
      log.info({ jobs: record.jobIds }, 'delivery already received');
      const jobs = record.jobIds.map((jobId) => ({ jobId }));
      return answer('duplicate', { deliveryId, jobs });
    }

    const queued: QueuedBuild[] = builds.map((build, index) => ({
      flake: build.flake,
      commit: build.commit,
      ...record.builds[index]!,
    }));
    log.info({ jobs: queued }, 'builds queued');
    for (const build of queued) this.onQueued(build.flake, build.commit);
    const skipped = suspended.length > 0 ? { suspended } : {};
    if (record.dropped.length === 0)
      return answer('queued', { deliveryId, jobs: queued, ...skipped });
    // Superseded and never started: a flake pushing faster than it builds keeps at most its
    // cap of builds waiting, so it cannot push the other flakes' builds back.
    this.metrics.droppedBuilds.inc(record.dropped.length);
    log.info({ dropped: record.dropped }, 'superseded builds dropped from the queue');
    return answer('queued', { deliveryId, jobs: queued, dropped: record.dropped, ...skipped });
  }

  /** Queues the delivery's builds; any Redis failure is QueueUnavailable: the forge will retry. */
  private async persist(
    forge: Forge,
    deliveryId: string,
    builds: BuildJob[],
    log: Logger,
  ): Promise<DeliveryRecord> {
    try {
      return await this.builds.queue(forge, deliveryId, builds);
    } catch (error) {
      if (error instanceof QueueLimitReached) {
        log.warn(
          { limit: error.limit, waiting: error.waiting },
          'flake at its cap of queued builds',
        );
        throw new DeliveryRejected('over-limit', error.message);
      }
      log.warn({ err: error }, 'Redis did not take the delivery');
      throw new QueueUnavailable(`the build queue is unavailable: ${(error as Error).message}`);
    }
  }
}

const NO_MATCHING_SECRET =
  'the signature matches the secret of no flake registered for this repository';

// Checked against when no flake follows the repository, so that answer takes as long.
const UNREGISTERED = 'no flake follows this repository';

const SIGNATURE_HEADERS: Record<Forge, string> = {
  github: 'X-Hub-Signature-256',
  gitea: 'X-Gitea-Signature',
  forgejo: 'X-Forgejo-Signature',
  gitlab: 'X-Gitlab-Token',
};

function answer(outcome: DeliveryOutcome, body: Record<string, unknown>): DeliveryAnswer {
  return { outcome, body: { status: outcome, ...body } };
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
