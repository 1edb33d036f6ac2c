// What a shoot sees at /nix/store: the closure of its caller's image, never the node's
// whole store (which holds every tenant's closures and the host's own system). A view is
// a folder with one read-only bind per store path of the closure, built once per image and
// kept: a shoot then costs one recursive bind of the view into its clone's export.
//
//   <root>/<sha256(image)[:16]>/<store path basename>   read-only bind of the store path
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { mountsUnder, removeUnmountedTree } from '@seed/mount-table';
import { bindMount, unmount } from '../vm/host-mounts';

const run = promisify(execFile);

/** A store path's basename: `<32 base32 chars>-<name>`. */
const STORE_BASENAME = /^[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+\-._?=]+$/;

/** The image cannot be exposed: not a store path of this store, or nix does not know it. */
export class ClosureUnavailable extends Error {
  override readonly name = 'ClosureUnavailable';
}

/** `nix:0/nix/store/<hash>-<name>` (nix-snapshotter's image reference) → the store path. */
export function imageStorePath(image: string, storeDir: string): string {
  const storePath = image.startsWith('nix:0') ? image.slice('nix:0'.length) : image;
  const base = path.basename(storePath);
  if (path.dirname(storePath) !== storeDir || !STORE_BASENAME.test(base)) {
    throw new ClosureUnavailable(`image ${image} is not a path of the store ${storeDir}`);
  }
  return storePath;
}

export interface ClosureViewsOptions {
  /** Where views are built; emptied at start (nothing else may use it). */
  root: string;
  /** The node's store: every path of a closure must be directly in it. */
  storeDir: string;
  /** `nix-store` to ask for closures (argv, no shell). */
  nixStore?: string;
}

export class ClosureViews {
  readonly #options: Required<ClosureViewsOptions>;
  readonly #views = new Map<string, Promise<string>>();

  constructor(options: ClosureViewsOptions) {
    this.#options = { nixStore: 'nix-store', ...options };
  }

  /**
   * The view of `storePath`'s closure, built on first use (concurrent callers wait for the
   * same build). A failed build is forgotten, so the next shoot tries again.
   */
  viewOf(storePath: string): Promise<string> {
    let view = this.#views.get(storePath);
    if (view === undefined) {
      view = this.#build(storePath);
      this.#views.set(storePath, view);
      view.catch(() => this.#views.delete(storePath));
    }
    return view;
  }

  /** Unmounts and removes every view (and any a previous daemon left). */
  async clear(): Promise<void> {
    await Promise.allSettled(this.#views.values());
    this.#views.clear();
    for (const point of await mountsUnder(this.#options.root)) await unmount(point);
    await removeUnmountedTree(this.#options.root);
  }

  async #build(storePath: string): Promise<string> {
    const { root, storeDir } = this.#options;
    const paths = await this.#closure(storePath);
    const view = path.join(root, createHash('sha256').update(storePath).digest('hex').slice(0, 16));
    await removeUnmountedTree(view);
    await mkdir(view, { recursive: true });
    try {
      for (const member of paths) {
        if (path.dirname(member) !== storeDir) {
          throw new ClosureUnavailable(
            `${member}, in the closure of ${storePath}, is not in ${storeDir}`,
          );
        }
        const entry = path.join(view, path.basename(member));
        // A bind needs a mount point of the source's kind: store paths may be files.
        if ((await stat(member)).isDirectory()) await mkdir(entry);
        else await writeFile(entry, '');
        await bindMount(member, entry, true);
      }
    } catch (error) {
      for (const point of await mountsUnder(view)) await unmount(point).catch(() => undefined);
      await removeUnmountedTree(view).catch(() => undefined);
      throw error;
    }
    return view;
  }

  /** `nix-store --query --requisites`: the path and everything it refers to, transitively. */
  async #closure(storePath: string): Promise<string[]> {
    try {
      const { stdout } = await run(this.#options.nixStore, ['--query', '--requisites', storePath], {
        timeout: 60_000,
        maxBuffer: 64 << 20,
      });
      return stdout.split('\n').filter((line) => line !== '');
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr?.trim();
      throw new ClosureUnavailable(
        `cannot read the closure of ${storePath}: ${stderr || (error as Error).message}`,
        { cause: error },
      );
    }
  }
}
