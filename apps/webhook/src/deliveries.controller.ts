import { Controller, Inject, Post, Res } from '@nestjs/common';
import { RouteConfig } from '@nestjs/platform-fastify';
import type {
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  onRequestAsyncHookHandler,
} from 'fastify';
import { DeliveryRejected, type RejectionReason } from './deliveries';
import type { WebhookMetrics } from './metrics';
import {
  QueueUnavailable,
  WebhookService,
  type DeliveryOutcome,
  type IncomingDelivery,
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

const UNKNOWN_HOOK = { error: 'no flake has this hook id' };

/**
 * What must be checked before a delivery's body is read: a Nest guard or middleware runs
 * only once Fastify has read it, so these are Fastify `onRequest` hooks, named on the
 * route by `@RouteConfig` and attached by {@link DeliveryGates.install}.
 */
export type DeliveryGate = 'unverified-bytes' | 'known-hook';

const gated = (gate: DeliveryGate) => RouteConfig({ deliveryGate: gate });

type HookRequest = FastifyRequest<{ Params: { id: string } }>;

/**
 * HTTP only: hands a delivery's raw body and headers to the service and maps its answer
 * or its error's kind to a status with a JSON `error`. The handlers take only Fastify's
 * reply (`@Res()`; the request is `reply.request`) and send the answer themselves: one
 * parameter for Nest to extract, and no pipes, interceptors or serialisation of Nest's on
 * this path.
 */
@Controller()
export class DeliveriesController {
  constructor(@Inject(WebhookService) private readonly service: WebhookService) {}

  @Post('webhook')
  @gated('unverified-bytes')
  webhook(@Res() reply: FastifyReply): Promise<void> {
    return this.receive(reply, 'webhook');
  }

  /** The original Seed's webhook URL, kept so existing GitHub hooks keep working. */
  @Post('refresh')
  @gated('unverified-bytes')
  refresh(@Res() reply: FastifyReply): Promise<void> {
    return this.receive(reply, 'refresh');
  }

  /**
   * One flake's own URL: its secret is known from the path, so a body is authenticated
   * before it is parsed, and an unknown id is refused before its body is read.
   */
  @Post('hooks/:id')
  @gated('known-hook')
  async hook(@Res() reply: FastifyReply): Promise<void> {
    // Looked up again: the flake may have gone while its body was read.
    const flake = this.service.hook((reply.request as HookRequest).params.id);
    if (flake === undefined) {
      void reply.status(404).send(UNKNOWN_HOOK);
      return;
    }
    return this.receive(reply, { hook: flake });
  }

  private async receive(reply: FastifyReply, route: IncomingDelivery['route']): Promise<void> {
    const request = reply.request;
    try {
      const answer = await this.service.receive({
        headers: request.headers,
        contentType: request.headers['content-type'],
        body: Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0),
        route,
      });
      void reply.status(ANSWERED[answer.outcome]).send(answer.body);
    } catch (error) {
      if (error instanceof DeliveryRejected) {
        void reply.status(STATUS[error.reason]).send({ error: error.message });
      } else if (error instanceof QueueUnavailable) {
        void reply.status(503).header('Retry-After', '5').send({ error: error.message });
      } else {
        // Nest's exception filters answer it (JsonErrorFilter).
        throw error;
      }
    }
  }
}

/**
 * The pre-body checks of the delivery routes, as Fastify `onRequest` hooks. `install`
 * must run before Nest registers its routes (before `app.init()` or `listen`): it adds
 * each gate's hook to the routes whose `@RouteConfig` name it, and to no other route.
 */
export class DeliveryGates {
  // Bytes of unverified deliveries being read or parsed now (by their Content-Length).
  private unverifiedBytes = 0;
  private readonly hooks: Record<DeliveryGate, onRequestAsyncHookHandler>;

  constructor(
    service: Pick<WebhookService, 'hook'>,
    metrics: WebhookMetrics,
    limits: { bodyLimitBytes: number; maxUnverifiedBytes: number },
  ) {
    this.hooks = {
      // The shared URLs must parse a body to learn whose secret signs it: the bodies read
      // and parsed at once add up to at most `maxUnverifiedBytes` (by their
      // Content-Length, or the body limit when they do not say), so a flood of large
      // unsigned bodies costs bounded memory while ordinary pushes, a few KiB each, still
      // pass side by side. The rest are refused before their body is read.
      'unverified-bytes': async (request, reply) => {
        const declared = Number(request.headers['content-length']);
        const size =
          Number.isSafeInteger(declared) && declared >= 0 ? declared : limits.bodyLimitBytes;
        if (this.unverifiedBytes > 0 && this.unverifiedBytes + size > limits.maxUnverifiedBytes) {
          metrics.deliveries.inc({ forge: 'unknown', event: 'other', outcome: 'busy' });
          return reply.status(503).header('Retry-After', '5').send({
            error: "too many deliveries are being verified; retry, or use the flake's own hook URL",
          });
        }
        this.unverifiedBytes += size;
        let released = false;
        reply.raw.once('close', () => {
          if (!released) this.unverifiedBytes -= size;
          released = true;
        });
      },
      'known-hook': async (request, reply) => {
        if (service.hook((request as HookRequest).params.id) === undefined) {
          return reply.status(404).send(UNKNOWN_HOOK);
        }
      },
    };
  }

  install(fastify: FastifyInstance): void {
    fastify.addHook('onRoute', (route) => {
      const config: { deliveryGate?: DeliveryGate } | undefined = route.config;
      const gate = config?.deliveryGate;
      if (gate === undefined) return;
      const existing = route.onRequest;
      route.onRequest = [
        ...(existing === undefined ? [] : Array.isArray(existing) ? existing : [existing]),
        this.hooks[gate],
      ];
    });
  }
}
