// POST /shoot, the pool's hot path, is a route on the Nest app's own Fastify instance
// rather than a Nest controller method. The handler takes Fastify's request and reply and
// maps its own errors, so Nest's pipeline around it (guards, pipes, interceptors, the
// response controller: a chain of promises per request) did nothing for it but cost time:
// in bench/shoot, each series alternating the two routes on one daemon, the Nest route
// answered a warm `true` 0.3-0.7 ms later on average in all eight series (at the median,
// 0.1-0.6 ms later in six). Everything else about the HTTP edge is shared with the Nest
// routes: one server, its body limit and JSON parser, and Nest's error handler (the global
// JSON error filter) for what this handler rethrows and for bodies that do not parse.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { bearerToken } from '@seed/service-kit';
import { CallerLookupFailed, CallerRejected, type CallerRejection } from './caller/caller';
import { PoolFull, PoolUnavailable } from './pool/pool';
import {
  ShootInvalid,
  ShootVmFailed,
  parseHttpShoot,
  toAnswer,
  type ShootService,
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
async function shoot(
  service: ShootService,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<void> {
  // Fastify's clock starts when it routes the request, before the body is read.
  service.observeReceive(reply.elapsedTime / 1000);
  try {
    const claim = {
      ip: request.socket.remoteAddress ?? request.ip,
      token: bearerToken(request.headers.authorization),
    };
    const outcome = await service.run(claim, () => parseHttpShoot(request.body, service.limits));
    await service.answer(() => reply.status(200).send(toAnswer(outcome)));
  } catch (error) {
    const answer = errorAnswer(error);
    if (answer === undefined) throw error;
    if (answer.retryAfter !== undefined) void reply.header('Retry-After', answer.retryAfter);
    await service.answer(() => reply.status(answer.status).send(answer.body));
  }
}

export function registerShootRoute(fastify: FastifyInstance, service: ShootService): void {
  fastify.post('/shoot', (request, reply) => shoot(service, request, reply));
}
