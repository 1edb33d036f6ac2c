import { ConfigError, closeOnSignals, createLogger, listMetricsIfAsked } from '@seed/service-kit';
import { loadShootPoolConfig } from './config';
import { ShootMetrics } from './metrics';
import { createShootPoolApp } from './shoot-pool.app';

async function main(): Promise<void> {
  if (
    await listMetricsIfAsked(
      () => new ShootMetrics(() => ({ idle: 0, busy: 0, starting: 0, queued: 0 })).registry,
    )
  )
    return;
  const config = loadShootPoolConfig();
  const logger = createLogger('shoot-pool', config.logLevel);
  if (config.callers.kind === 'static') {
    logger.warn('SEED_SHOOT_LOCAL_CALLER is set: callers come from a fixed map (development only)');
  }
  const app = await createShootPoolApp(config, { logger });
  closeOnSignals(app.http, logger);
  await app.http.listen(config.http.port, config.http.host);
  logger.info(
    { url: await app.http.getUrl(), grpcPort: app.grpc.port, size: config.pool.size },
    'shoot pool listening',
  );
}

main().catch((error: unknown) => {
  process.stderr.write(
    `shoot-pool: ${error instanceof ConfigError ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
