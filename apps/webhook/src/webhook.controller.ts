import { Controller, Inject, Post, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DeliveryRejected, type RejectionReason } from './deliveries';
import { QueueUnavailable, WebhookService, type IncomingDelivery } from './webhook.service';

const STATUS: Record<RejectionReason, number> = {
  malformed: 400,
  unauthorized: 401,
  'unsupported-media-type': 415,
};

/** HTTP only: hands the raw body and headers to the service and maps its answer. */
@Controller()
export class WebhookController {
  constructor(@Inject(WebhookService) private readonly service: WebhookService) {}

  @Post('webhook')
  async webhook(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    await this.receive(request, reply, 'webhook');
  }

  /** The original Seed's webhook URL, kept so existing GitHub hooks keep working. */
  @Post('refresh')
  async refresh(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    await this.receive(request, reply, 'refresh');
  }

  private async receive(
    request: FastifyRequest,
    reply: FastifyReply,
    route: IncomingDelivery['route'],
  ): Promise<void> {
    try {
      const answer = await this.service.receive({
        headers: request.headers,
        contentType: request.headers['content-type'],
        body: Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0),
        route,
      });
      await reply.status(answer.status).send(answer.body);
    } catch (error) {
      if (error instanceof DeliveryRejected) {
        await reply.status(STATUS[error.reason]).send({ error: error.message });
      } else if (error instanceof QueueUnavailable) {
        await reply.status(503).header('Retry-After', '5').send({ error: error.message });
      } else {
        throw error;
      }
    }
  }
}
