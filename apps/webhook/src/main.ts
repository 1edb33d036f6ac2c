import { ConfigError, closeOnSignals, createLogger, listMetricsIfAsked } from '@seed/service-kit';
import { loadWebhookConfig } from './config';
import { createWebhookApp } from './webhook.app';
import { WebhookMetrics } from './metrics';

async function main(): Promise<void> {
  const noQueue = {
    depth: () => Promise.resolve({}),
    oldestWaitingSeconds: () => Promise.resolve(0),
  };
  if (await listMetricsIfAsked(() => new WebhookMetrics(noQueue).registry)) return;
  const config = loadWebhookConfig();
  const logger = createLogger('webhook', config.logLevel);
  const app = await createWebhookApp(config, logger);
  closeOnSignals(app, logger);
  await app.listen(config.http.port, config.http.host);
  logger.info(
    {
      url: await app.getUrl(),
      flakes: 'document' in config.flakes ? config.flakes.document.flakes.length : 'SeedFlakes',
    },
    'webhook listening',
  );
}

main().catch((error: unknown) => {
  process.stderr.write(
    `webhook: ${error instanceof ConfigError ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
