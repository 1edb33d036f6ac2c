import { Controller, Get, Inject, UseGuards } from '@nestjs/common';
import type { ShootPoolStatus } from '@seed/contracts';
import { BearerTokenGuard } from '@seed/service-kit';
import { ShootService } from './shoot.service';

/** GET /status; POST /shoot is a Fastify route of its own (shoot.route.ts says why). */
@Controller()
export class StatusController {
  constructor(@Inject(ShootService) private readonly service: ShootService) {}

  /** The pool's counts, for operators: behind the status token, unlike the probes. */
  @Get('status')
  @UseGuards(BearerTokenGuard)
  status(): ShootPoolStatus {
    const { idle, busy, queued, capacity, ready } = this.service.status();
    return { idle, busy, queued, capacity, ready };
  }
}
