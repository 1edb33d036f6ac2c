import {
  Catch,
  HttpException,
  HttpStatus,
  type ArgumentsHost,
  type ExceptionFilter,
} from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';

/** Every error a Seed service answers is JSON `{"error": "..."}` with a fitting status. */
@Catch()
export class JsonErrorFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    if (exception instanceof HttpException) {
      const response = exception.getResponse();
      const message =
        typeof response === 'object' && response !== null && 'message' in response
          ? String(response.message)
          : exception.message;
      void reply.status(exception.getStatus()).send({ error: message });
      return;
    }
    this.logger.error({ err: exception }, 'unhandled error');
    void reply.status(HttpStatus.INTERNAL_SERVER_ERROR).send({ error: 'internal error' });
  }
}
