import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import {
  Inject,
  Injectable,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import type { FastifyRequest } from 'fastify';

const MIN_TOKEN_LENGTH = 32;

/**
 * A bearer token kept in a file (a mounted Secret). The file is checked on each use and
 * re-read when it changed, so a rotated Secret takes effect without a restart: a stat is
 * a few microseconds, and Kubernetes replaces a Secret's files by swapping a symlink,
 * which an inotify watch on the old file would miss.
 */
export class TokenFile {
  #version = '';
  #digest: Buffer = Buffer.alloc(0);

  /** Throws, naming the file, when it cannot be read or holds no token. */
  constructor(readonly file: string) {
    this.current();
  }

  /** Whether `presented` is the token, compared in constant time. */
  matches(presented: string): boolean {
    return timingSafeEqual(digest(presented), this.current());
  }

  private current(): Buffer {
    const stat = statSync(this.file);
    const version = `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
    if (version !== this.#version) {
      const token = readFileSync(this.file, 'utf8').trim();
      if (token === '') throw new Error(`${this.file} is empty: it must hold the API token`);
      // Also refuses the manifests' placeholders: a guessable token is no lock.
      if (token.length < MIN_TOKEN_LENGTH) {
        throw new Error(
          `${this.file} holds ${token.length} characters, fewer than ${MIN_TOKEN_LENGTH}: make a token with \`openssl rand -hex 32\``,
        );
      }
      this.#digest = digest(token);
      this.#version = version;
    }
    return this.#digest;
  }
}

// Digests have one length, so comparing them never tells the token's length.
function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/** The token of an `Authorization: Bearer <token>` header value, if it is one. */
export function bearerToken(authorization: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
}

/** Lets a request through only with `Authorization: Bearer <the token in the file>`. */
@Injectable()
export class BearerTokenGuard implements CanActivate {
  constructor(@Inject(TokenFile) private readonly token: TokenFile) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const presented = bearerToken(request.headers.authorization);
    if (presented === undefined) {
      throw new UnauthorizedException('this API needs Authorization: Bearer <token>');
    }
    if (!this.token.matches(presented)) throw new UnauthorizedException('wrong token');
    return true;
  }
}
