import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DeliveryRejected, type RejectionReason } from './deliveries';
import type { WebhookMetrics } from './metrics';
import {
  QueueUnavailable,
  type DeliveryOutcome,
  type IncomingDelivery,
  type WebhookService,
} from './webhook.service';

const ANSWERED: Record<DeliveryOutcome, number> = {
  pong: 200,
  duplicate: 200,
  queued: 202,
  ignored: 202,
};

const STATUS: Record<RejectionReason, number> = {
  malformed: 400,
  unauthorized: 401,
  'unsupported-media-type': 415,
  'over-limit': 429,
};

/**
 * HTTP only: hands a delivery's raw body and headers to the service and maps its answer.
 *
 * These two routes are Fastify's own rather than a Nest controller's: on the delivery path
 * Nest's router (parameter pipes, exception zone, extra promise hops) cost about 30 µs of
 * the webhook's CPU per delivery, a tenth of it, measured side by side with bench/webhook.
 * Errors they do not answer still reach Nest's exception filters.
 */
export function registerDeliveryRoutes(
  fastify: FastifyInstance,
  service: WebhookService,
  metrics: WebhookMetrics,
  limits: { bodyLimitBytes: number; maxUnverifiedBytes: number },
): void {
  const receive =
    (route: (request: FastifyRequest) => IncomingDelivery['route']) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      try {
        const answer = await service.receive({
          headers: request.headers,
          contentType: request.headers['content-type'],
          body: Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0),
          route: route(request),
        });
        return reply.status(ANSWERED[answer.outcome]).send(answer.body);
      } catch (error) {
        if (error instanceof DeliveryRejected)
          return reply.status(STATUS[error.reason]).send({ error: error.message });
        if (error instanceof QueueUnavailable)
          return reply.status(503).header('Retry-After', '5').send({ error: error.message });
        throw error;
      }
    };

  // The shared URLs must parse a body to learn whose secret signs it: the bodies read and
  // parsed at once add up to at most `maxUnverifiedBytes` (by their Content-Length, or the
  // body limit when they do not say), so a flood of large unsigned bodies costs bounded
  // memory while ordinary pushes, a few KiB each, still pass side by side. The rest are
  // refused before their body is read.
  let unverifiedBytes = 0;
  const capUnverified = async (request: FastifyRequest, reply: FastifyReply) => {
    const declared = Number(request.headers['content-length']);
    const size = Number.isSafeInteger(declared) && declared >= 0 ? declared : limits.bodyLimitBytes;
    if (unverifiedBytes > 0 && unverifiedBytes + size > limits.maxUnverifiedBytes) {
      metrics.deliveries.inc({ forge: 'unknown', event: 'other', outcome: 'busy' });
      return reply.status(503).header('Retry-After', '5').send({
        error: "too many deliveries are being verified; retry, or use the flake's own hook URL",
      });
    }
    unverifiedBytes += size;
    let released = false;
    reply.raw.once('close', () => {
      if (!released) unverifiedBytes -= size;
      released = true;
    });
  };
  fastify.post(
    '/webhook',
    { onRequest: capUnverified },
    receive(() => 'webhook'),
  );
  // The original Seed's webhook URL, kept so existing GitHub hooks keep working.
  fastify.post(
    '/refresh',
    { onRequest: capUnverified },
    receive(() => 'refresh'),
  );

  // One flake's own URL: its secret is known from the path, so a body is authenticated
  // before it is parsed, and an unknown id is refused before its body is read.
  fastify.post<{ Params: { id: string } }>(
    '/hooks/:id',
    {
      onRequest: async (request: FastifyRequest<{ Params: { id: string } }>, reply) => {
        if (service.hook(request.params.id) === undefined) {
          return reply.status(404).send({ error: 'no flake has this hook id' });
        }
      },
    },
    receive((request) => ({ hook: service.hook((request.params as { id: string }).id)! })),
  );
}
