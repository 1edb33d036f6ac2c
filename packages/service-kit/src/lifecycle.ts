import type { INestApplication, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';

/**
 * Stops the service cleanly on SIGTERM or SIGINT: the server stops taking requests and
 * finishes the ones in flight, shutdown hooks close connections, and the process exits 0.
 * A second signal, or a shutdown that outlives the grace period, exits at once.
 */
export function closeOnSignals(app: INestApplication, logger: Logger, graceMs = 25_000): void {
  let closing = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (closing) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    closing = true;
    logger.info({ signal }, 'shutting down');
    const deadline = setTimeout(() => {
      logger.error({ graceMs }, 'shutdown took too long: exiting');
      process.exit(1);
    }, graceMs);
    deadline.unref();
    app
      .close()
      .then(() => {
        logger.info('stopped');
        process.exit(0);
      })
      .catch((error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

/**
 * A Nest provider that runs `stop` once the HTTP server stopped taking requests: where a
 * service closes what its module wired (gRPC servers, queues, connections, VMs).
 */
export class ShutdownHook implements OnApplicationShutdown {
  constructor(private readonly stop: () => Promise<void>) {}

  async onApplicationShutdown(): Promise<void> {
    await this.stop();
  }
}
