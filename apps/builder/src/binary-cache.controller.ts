import { Controller, Get, Inject, NotFoundException, Param, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { FileBinaryCache } from './repositories/binary-cache.repository';

/** The binary cache this builder publishes to, or why there is none. */
export const BINARY_CACHE = Symbol('binary cache');
export type ServedBinaryCache = { cache: FileBinaryCache } | { cache: undefined; off: string };

/**
 * The signed binary cache over HTTP, read-only, as nix's HTTP substituter asks for it:
 * `GET /nix-cache/nix-cache-info`, `/nix-cache/<hash>.narinfo`, `/nix-cache/nar/<file>`
 * (HEAD too). No listing; any other name is 404, as a path nix does not have.
 */
@Controller('nix-cache')
export class BinaryCacheController {
  constructor(@Inject(BINARY_CACHE) private readonly served: ServedBinaryCache) {}

  @Get('nix-cache-info')
  info(@Res() reply: FastifyReply): void {
    void reply.type('text/x-nix-cache-info').send(this.cache().info);
  }

  @Get('nar/:file')
  nar(@Param('file') file: string, @Res() reply: FastifyReply): Promise<void> {
    return this.send(`nar/${file}`, reply);
  }

  @Get(':file')
  narinfo(@Param('file') file: string, @Res() reply: FastifyReply): Promise<void> {
    return this.send(file, reply);
  }

  private cache(): FileBinaryCache {
    if (this.served.cache === undefined) {
      throw new NotFoundException(`this builder publishes no binary cache: ${this.served.off}`);
    }
    return this.served.cache;
  }

  private async send(name: string, reply: FastifyReply): Promise<void> {
    const file = await this.cache().open(name);
    if (file === undefined) throw new NotFoundException(`${name} is not in the binary cache`);
    void reply
      .type(file.contentType)
      .header('content-length', file.size)
      .header('cache-control', file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
      .send(file.stream);
  }
}
