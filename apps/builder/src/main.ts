import { ConfigError, closeOnSignals, createLogger, listMetricsIfAsked } from '@seed/service-kit';
import { createBuilderApp } from './builder.app';
import { loadBuilderConfig } from './config';
import { BuilderMetrics } from './metrics';

async function main(): Promise<void> {
  if (await listMetricsIfAsked(() => new BuilderMetrics(['/nix/store']).registry)) return;
  const config = loadBuilderConfig();
  const logger = createLogger('builder', config.logLevel);
  const app = await createBuilderApp(config, logger);
  closeOnSignals(app, logger, config.worker.shutdownGraceMs + 5_000);
  await app.listen(config.http.port, config.http.host);
  logger.info(
    {
      url: await app.getUrl(),
      concurrency: config.worker.concurrency,
      reconciler: config.reconciler.address,
      // Who the reconciler sees; it must be `builder` to apply generations.
      identity: config.reconciler.tls.files.identity,
      store: config.nix.store ?? 'nix default',
      binaryCache: config.binaryCache.enabled
        ? {
            dir: config.binaryCache.dir,
            path: '/nix-cache',
            publicKey: config.binaryCache.publicKey,
          }
        : 'off',
    },
    'builder listening',
  );
  if (!config.binaryCache.enabled) logger.warn(`binary cache off: ${config.binaryCache.reason}`);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `builder: ${error instanceof ConfigError ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
