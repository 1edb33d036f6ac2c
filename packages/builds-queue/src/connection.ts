import { readFileSync, statSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';

/** Where a service's Redis is and who it is there. The password stays in its file. */
export interface RedisConnectionSettings {
  /** `redis://HOST:PORT[/DB]` or `rediss://…`, without credentials. */
  url: string;
  username: string;
  /** A file holding the user's password (a mounted Secret), re-read when it changes. */
  passwordFile: string;
}

/**
 * A password kept in a file. Checked on each (re)connection and re-read when it changed:
 * Kubernetes replaces a Secret's files by swapping a symlink, which a watch on the old
 * file would miss, and a stat per connection costs nothing.
 */
class PasswordFile {
  #version = '';
  #password = '';

  /** Throws, naming the file, when it cannot be read or is empty: a service must not start so. */
  constructor(
    readonly file: string,
    private readonly onError: (error: Error) => void,
  ) {
    this.read();
  }

  /** The file's password, or the last good one when the file cannot be read now. */
  current(): string {
    try {
      this.read();
    } catch (error) {
      this.onError(error as Error);
    }
    return this.#password;
  }

  private read(): void {
    const stat = statSync(this.file);
    const version = `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
    if (version === this.#version) return;
    const password = readFileSync(this.file, 'utf8').trim();
    if (password === '') throw new Error(`${this.file} is empty: it must hold the Redis password`);
    this.#password = password;
    this.#version = version;
  }
}

/**
 * An ioredis connection that authenticates with the password in the file as it is at each
 * connection, so a rotated Secret is used from the next reconnection on, without a
 * restart. Connections already open stay authenticated (Redis checks a password only at
 * AUTH). BullMQ makes its blocking connection with `duplicate`, which keeps the file.
 */
class PasswordFileRedis extends Redis {
  private readonly password: PasswordFile;
  private readonly lazy: boolean;

  constructor(password: PasswordFile, options: RedisOptions) {
    // Lazily, so the first connection too goes through `connect` below.
    super({ ...options, password: password.current(), lazyConnect: true });
    this.password = password;
    this.lazy = options.lazyConnect === true;
    if (!this.lazy) this.connect().catch(() => undefined);
  }

  override connect(callback?: Parameters<Redis['connect']>[0]): Promise<void> {
    // The constructor of Redis does not connect here (lazyConnect), so `password` is set.
    this.options.password = this.password.current();
    return super.connect(callback);
  }

  override duplicate(override?: Partial<RedisOptions>): Redis {
    return new PasswordFileRedis(this.password, {
      ...this.options,
      lazyConnect: this.lazy,
      ...override,
    });
  }
}

/**
 * Connections of one Redis user. Each `connect` is a new connection with the user's name
 * and the password its file holds at that moment; `onError` hears connection errors and a
 * password file that can no longer be read (the last good password is used meanwhile).
 */
export class RedisUser {
  private readonly password: PasswordFile;

  /** Reads the password file now: throws, naming it, when it cannot be used. */
  constructor(
    private readonly settings: RedisConnectionSettings,
    private readonly onError: (error: Error) => void,
  ) {
    this.password = new PasswordFile(settings.passwordFile, onError);
  }

  connect(options: RedisOptions = {}): Redis {
    const { hostname, port, pathname, protocol } = new URL(this.settings.url);
    const db = pathname.length > 1 ? Number(pathname.slice(1)) : 0;
    const redis = new PasswordFileRedis(this.password, {
      ...options,
      host: hostname.replace(/^\[(.*)\]$/, '$1'),
      port: port === '' ? 6379 : Number(port),
      db,
      ...(protocol === 'rediss:' ? { tls: {} } : {}),
      username: this.settings.username,
    });
    redis.on('error', this.onError);
    return redis;
  }
}
