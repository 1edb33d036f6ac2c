import { createReadStream } from 'node:fs';
import { access, constants, lstat, readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { NixError, type CallOptions } from '@seed/nix-eval';
import type { GcOutcome } from '@seed/service-kit';
import { cacheGarbage, parseNarInfo, type NarInfo } from '../binary-cache-gc';

/** What publishing needs from nix (NixClient): the builder's store is the source. */
export interface ClosureCopier {
  copyClosures(paths: readonly string[], destination: string, call?: CallOptions): Promise<void>;
  signClosures(
    store: string,
    paths: readonly string[],
    secretKeyFile: string,
    call?: CallOptions,
  ): Promise<void>;
}

export interface FileBinaryCacheOptions {
  /** The cache folder; nix writes `<hash>.narinfo` and `nar/…` there. */
  dir: string;
  /** A nix secret signing key file (a mounted Secret). */
  secretKeyFile: string;
  compression: 'zstd' | 'xz' | 'none';
  /** Limit of each nix step of a publish. */
  timeoutMs: number;
}

/** Publishing to the binary cache failed; the closures stay built, another attempt may succeed. */
export class PublishFailed extends Error {
  override readonly name = 'PublishFailed';
}

/** A file of the cache as HTTP serves it. */
export interface CacheFile {
  stream: Readable;
  size: number;
  contentType: string;
  /** A NAR's name is its hash: it never changes. */
  immutable: boolean;
}

// The only names a nix binary cache is asked for; anything else (a folder, `..`, a temp
// file nix is still writing, `log/`) is not served.
const NARINFO = /^[0-9a-z]{32}\.narinfo$/;
const NAR = /^[0-9a-z]{52}\.nar(\.(xz|zst|bz2))?$/;

/**
 * The signed binary cache nodes substitute images from: a `file://` cache folder that
 * `nix copy` fills from the builder's store, signed with the builder's key, and read back
 * for the HTTP face. This is the only code that copies closures out of the builder.
 */
export class FileBinaryCache {
  private readonly storeUrl: string;

  constructor(
    private readonly nix: ClosureCopier,
    private readonly options: FileBinaryCacheOptions,
  ) {
    this.storeUrl = `file://${options.dir}`;
  }

  /** The cache folder. */
  get dir(): string {
    return this.options.dir;
  }

  /** nix's description of the cache, served as `/nix-cache-info`. */
  readonly info = ['StoreDir: /nix/store', 'WantMassQuery: 1', 'Priority: 30', ''].join('\n');

  /**
   * Copies the closure of every path into the cache, signed. `nix copy` signs what it
   * writes but leaves paths the cache already holds as they are (unsigned, or signed by a
   * key since replaced), so the closures are then signed in the cache too; both steps
   * skip what is already done.
   */
  async publish(paths: readonly string[], signal?: AbortSignal): Promise<void> {
    const unique = [...new Set(paths)];
    const call = { signal, timeoutMs: this.options.timeoutMs };
    const { secretKeyFile, compression } = this.options;
    try {
      await this.nix.copyClosures(
        unique,
        `${this.storeUrl}?secret-key=${secretKeyFile}&compression=${compression}`,
        call,
      );
      await this.nix.signClosures(this.storeUrl, unique, secretKeyFile, call);
    } catch (error) {
      if (error instanceof NixError && error.kind === 'aborted') throw error;
      throw new PublishFailed(
        `publishing ${unique.length} image closure(s) to the binary cache ${this.options.dir} failed: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  /**
   * Deletes what the cache holds beyond the closures of `liveImages` (cacheGarbage): each
   * narinfo before its NAR, so a node never finds a narinfo whose NAR is gone. Run while
   * nothing publishes (StoreGate): a path published meanwhile could lose its NAR.
   */
  async collectGarbage(liveImages: readonly string[]): Promise<GcOutcome> {
    const narinfos: NarInfo[] = [];
    for (const file of await readdir(this.options.dir)) {
      if (!NARINFO.test(file)) continue;
      const text = await readFile(path.join(this.options.dir, file), 'utf8').catch(() => '');
      const info = parseNarInfo(file, text);
      if (info) narinfos.push(info);
    }
    const garbage = cacheGarbage(narinfos, liveImages);
    let freedBytes = 0;
    const remove = async (name: string) => {
      const file = path.join(this.options.dir, name);
      const stat = await lstat(file).catch(() => undefined);
      if (!stat?.isFile()) return;
      await rm(file, { force: true });
      freedBytes += stat.size;
    };
    for (const info of garbage.narinfos) await remove(info.file);
    for (const nar of garbage.nars) if (/^nar\/[^/]+$/.test(nar)) await remove(nar);
    return { store: this.dir, deletedPaths: garbage.narinfos.length, freedBytes };
  }

  /** A readiness check: the cache folder can be written (a full or read-only volume cannot). */
  readonly writable = async (): Promise<true | string> => {
    try {
      await access(this.options.dir, constants.W_OK);
      return true;
    } catch (error) {
      return `binary cache folder ${this.options.dir}: ${(error as Error).message}`;
    }
  };

  /**
   * Opens `<hash>.narinfo` or `nar/<file>` of the cache (`name` relative to its root);
   * undefined for anything not there or not a cache file.
   */
  async open(name: string): Promise<CacheFile | undefined> {
    const [folder, file, ...rest] = name.includes('/') ? name.split('/') : ['', name];
    if (rest.length > 0 || file === undefined) return undefined;
    let contentType: string;
    if (folder === '' && NARINFO.test(file)) contentType = 'text/x-nix-narinfo';
    else if (folder === 'nar' && NAR.test(file)) contentType = 'application/x-nix-nar';
    else return undefined;
    const full = path.join(this.options.dir, folder, file);
    try {
      const stat = await lstat(full);
      if (!stat.isFile()) return undefined;
      return {
        stream: createReadStream(full),
        size: stat.size,
        contentType,
        immutable: folder === 'nar',
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }
}
