import {
  BadRequestException,
  Controller,
  Get,
  Inject,
  NotFoundException,
  Param,
  Query,
  UseGuards,
} from '@nestjs/common';
import { BuildsQueueConsumer } from '@seed/builds-queue';
import { parseFlakeRef, type BuildList, type BuildRecord } from '@seed/contracts';
import { BearerTokenGuard } from '@seed/service-kit';
import { summarize } from './build-record';

/**
 * Read-only HTTP view of builds: `GET /builds?flake=…` and `GET /builds/:id`. Records
 * name flakes and carry build logs, so they need the API token.
 */
@Controller('builds')
@UseGuards(BearerTokenGuard)
export class BuildsController {
  constructor(@Inject(BuildsQueueConsumer) private readonly records: BuildsQueueConsumer) {}

  @Get()
  async list(@Query('flake') flake?: string, @Query('limit') limit?: string): Promise<BuildList> {
    if (flake !== undefined) {
      try {
        parseFlakeRef(flake);
      } catch (error) {
        throw new BadRequestException((error as Error).message);
      }
    }
    const count = limit === undefined ? 20 : Number(limit);
    if (!Number.isInteger(count) || count < 1 || count > 200) {
      throw new BadRequestException('limit must be an integer from 1 to 200');
    }
    return { builds: (await this.records.list(flake, count)).map(summarize) };
  }

  @Get(':id')
  async get(@Param('id') id: string): Promise<BuildRecord> {
    const record = await this.records.get(id);
    if (!record) throw new NotFoundException(`no build ${id}`);
    return record;
  }
}
