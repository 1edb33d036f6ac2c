import { Controller, Get, Header, Inject, Res, type DynamicModule } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { Registry } from 'prom-client';

/** One dependency's answer to a readiness check: true, or why it is not ready. */
export type ReadinessCheck = () => Promise<true | string>;

export interface ProbesOptions {
  registry: Registry;
  /** Named checks run by /readyz, e.g. { redis: () => ping() }. */
  readiness: Record<string, ReadinessCheck>;
  /** A check that hangs counts as failed after this long. */
  readinessTimeoutMs?: number;
}

const PROBES_OPTIONS = Symbol('PROBES_OPTIONS');

async function runCheck(check: ReadinessCheck, timeoutMs: number): Promise<true | string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs);
  });
  try {
    return await Promise.race([check().catch((error: Error) => error.message), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

@Controller()
class ProbesController {
  constructor(@Inject(PROBES_OPTIONS) private readonly options: ProbesOptions) {}

  /** Live as long as the process answers HTTP. */
  @Get('healthz')
  healthz(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** Ready when every dependency answers; 503 names the ones that do not. */
  @Get('readyz')
  async readyz(@Res() reply: FastifyReply): Promise<void> {
    const timeoutMs = this.options.readinessTimeoutMs ?? 2_000;
    const entries = await Promise.all(
      Object.entries(this.options.readiness).map(
        async ([name, check]) => [name, await runCheck(check, timeoutMs)] as const,
      ),
    );
    const failing = entries.filter(([, result]) => result !== true);
    const checks = Object.fromEntries(
      entries.map(([name, result]) => [name, result === true ? 'ok' : result]),
    );
    if (failing.length === 0) {
      await reply.status(200).send({ status: 'ready', checks });
    } else {
      const error = failing.map(([name, why]) => `${name}: ${String(why)}`).join('; ');
      await reply.status(503).send({ error, checks });
    }
  }

  @Get('metrics')
  @Header('Cache-Control', 'no-store')
  async metrics(@Res() reply: FastifyReply): Promise<void> {
    const body = await this.options.registry.metrics();
    await reply.header('Content-Type', this.options.registry.contentType).send(body);
  }
}

/** `/healthz`, `/readyz` and `/metrics`, the same in every Seed service. */
export class ProbesModule {
  static register(options: ProbesOptions): DynamicModule {
    return {
      module: ProbesModule,
      controllers: [ProbesController],
      providers: [{ provide: PROBES_OPTIONS, useValue: options }],
    };
  }
}
