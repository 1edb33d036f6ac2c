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
import { parseFlakeRef } from '@seed/nix-eval';
import { BearerTokenGuard } from '@seed/service-kit';
import { summarize, type BuildRecord } from './build-record';
import { BuildRecordsRepository } from './repositories/build-records.repository';

/**
 * Read-only HTTP view of builds: `GET /builds?flake=…` and `GET /builds/:id`. Records
 * name flakes and carry build logs, so they need the API token.
 */
@Controller('builds')
@UseGuards(BearerTokenGuard)
export class BuildsController {
  constructor(@Inject(BuildRecordsRepository) private readonly records: BuildRecordsRepository) {}

  @Get()
  async list(
    @Query('flake') flake?: string,
    @Query('limit') limit?: string,
  ): Promise<{ builds: Omit<BuildRecord, 'log'>[] }> {
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
