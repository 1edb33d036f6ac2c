import { ConfigError, closeOnSignals, createLogger, listMetricsIfAsked } from '@seed/service-kit';
import { loadReconcilerConfig } from './config';
import { createReconcilerApp } from './reconciler.app';
import { ReconcilerMetrics } from './metrics';

async function main(): Promise<void> {
  if (await listMetricsIfAsked(() => new ReconcilerMetrics(() => 0).registry)) return;
  const config = loadReconcilerConfig();
  const logger = createLogger('reconciler', config.logLevel);
  const app = await createReconcilerApp(config, logger);
  closeOnSignals(app.http, logger);
  await app.http.listen(config.http.port, config.http.host);
  logger.info(
    {
      url: await app.http.getUrl(),
      grpc: `${config.grpc.host}:${app.grpc.port}`,
      tls: { identity: config.grpc.tls.files.identity, reloadMs: config.grpc.tls.reloadMs },
    },
    'reconciler listening',
  );
}

main().catch((error: unknown) => {
  process.stderr.write(
    `reconciler: ${error instanceof ConfigError ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
