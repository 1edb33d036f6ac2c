import { Controller, Get, Inject, Post, Req, Res, UseGuards } from '@nestjs/common';
import type { ShootPoolStatus } from '@seed/contracts';
import { BearerTokenGuard, bearerToken } from '@seed/service-kit';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CallerLookupFailed, CallerRejected, type CallerRejection } from './caller/caller';
import { PoolFull, PoolUnavailable } from './pool/pool';
import {
  ShootInvalid,
  ShootService,
  ShootVmFailed,
  parseHttpShoot,
  toAnswer,
} from './shoot.service';

const CALLER_STATUS: Record<CallerRejection, number> = {
  unauthenticated: 401,
  forbidden: 403,
  unresolvable: 409,
};

/** The HTTP status and JSON body of a failed shoot; undefined for unexpected errors. */
function errorAnswer(
  error: unknown,
): { status: number; body: object; retryAfter?: string } | undefined {
  if (error instanceof ShootInvalid) {
    return { status: 400, body: { error: error.message, reasons: error.reasons } };
  }
  if (error instanceof CallerRejected)
    return { status: CALLER_STATUS[error.reason], body: { error: error.message } };
  if (error instanceof PoolFull)
    return { status: 429, body: { error: error.message }, retryAfter: '1' };
  if (error instanceof ShootVmFailed) return { status: 502, body: { error: error.message } };
  if (error instanceof PoolUnavailable || error instanceof CallerLookupFailed) {
    return { status: 503, body: { error: error.message }, retryAfter: '5' };
  }
  return undefined;
}

/**
 * HTTP only: the caller's claim is the request's source IP and bearer token; maps the
 * service's errors to statuses.
 */
@Controller()
export class ShootController {
  constructor(@Inject(ShootService) private readonly service: ShootService) {}

  @Post('shoot')
  async shoot(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    // Fastify's clock starts when it routes the request, before the body is read.
    this.service.observeReceive(reply.elapsedTime / 1000);
    try {
      const claim = {
        ip: request.socket.remoteAddress ?? request.ip,
        token: bearerToken(request.headers.authorization),
      };
      const outcome = await this.service.run(claim, () =>
        parseHttpShoot(request.body, this.service.limits),
      );
      await this.service.answer(() => reply.status(200).send(toAnswer(outcome)));
    } catch (error) {
      const answer = errorAnswer(error);
      if (answer === undefined) throw error;
      if (answer.retryAfter !== undefined) void reply.header('Retry-After', answer.retryAfter);
      await this.service.answer(() => reply.status(answer.status).send(answer.body));
    }
  }

  /** The pool's counts, for operators: behind the status token, unlike the probes. */
  @Get('status')
  @UseGuards(BearerTokenGuard)
  status(): ShootPoolStatus {
    const { idle, busy, queued, capacity, ready } = this.service.status();
    return { idle, busy, queued, capacity, ready };
  }
}
