import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DeliveryRejected, type RejectionReason } from './deliveries';
import { QueueUnavailable, type IncomingDelivery, type WebhookService } from './webhook.service';

const STATUS: Record<RejectionReason, number> = {
  malformed: 400,
  unauthorized: 401,
  'unsupported-media-type': 415,
};

/**
 * HTTP only: hands a delivery's raw body and headers to the service and maps its answer.
 *
 * These two routes are Fastify's own rather than a Nest controller's: on the delivery path
 * Nest's router (parameter pipes, exception zone, extra promise hops) cost about 30 µs of
 * the webhook's CPU per delivery, a tenth of it, measured side by side with bench/webhook.
 * Errors they do not answer still reach Nest's exception filters.
 */
export function registerDeliveryRoutes(fastify: FastifyInstance, service: WebhookService): void {
  const receive =
    (route: IncomingDelivery['route']) => async (request: FastifyRequest, reply: FastifyReply) => {
      try {
        const answer = await service.receive({
          headers: request.headers,
          contentType: request.headers['content-type'],
          body: Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0),
          route,
        });
        return reply.status(answer.status).send(answer.body);
      } catch (error) {
        if (error instanceof DeliveryRejected)
          return reply.status(STATUS[error.reason]).send({ error: error.message });
        if (error instanceof QueueUnavailable)
          return reply.status(503).header('Retry-After', '5').send({ error: error.message });
        throw error;
      }
    };
  fastify.post('/webhook', receive('webhook'));
  // The original Seed's webhook URL, kept so existing GitHub hooks keep working.
  fastify.post('/refresh', receive('refresh'));
}
