// What a shoot sees at /nix/store: the closure of its caller's image, never the node's
// whole store (which holds every tenant's closures and the host's own system). A view is
// a folder with one read-only bind per store path of the closure, built once per image and
// kept while shoots use it: a shoot then costs one recursive bind of the view into its
// clone's export. Each deploy brings new images, so a view no shoot has used for a while is
// removed (its binds with it); the next shoot of that image builds it again.
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
  /** How long a view no shoot holds is kept before `evictIdle` removes it. */
  idleMs?: number;
}

/** A view held by one shoot: release it once the shoot's clone is torn down. */
export interface HeldView {
  dir: string;
  release(): void;
}

interface View {
  built: Promise<string>;
  holders: number;
  lastReleased: number;
}

export class ClosureViews {
  readonly #options: Required<ClosureViewsOptions>;
  readonly #views = new Map<string, View>();
  /** Views being removed, by store path: a new view of the same image waits (same folder). */
  readonly #removing = new Map<string, Promise<void>>();

  constructor(options: ClosureViewsOptions) {
    this.#options = { nixStore: 'nix-store', idleMs: 10 * 60_000, ...options };
  }

  /**
   * The view of `storePath`'s closure, built on first use (concurrent callers wait for the
   * same build) and kept until released and idle. A failed build is forgotten, so the next
   * shoot tries again.
   */
  async hold(storePath: string): Promise<HeldView> {
    let view = this.#views.get(storePath);
    if (view === undefined) {
      const removed = this.#removing.get(storePath) ?? Promise.resolve();
      view = {
        built: removed.catch(() => undefined).then(() => this.#build(storePath)),
        holders: 0,
        lastReleased: 0,
      };
      this.#views.set(storePath, view);
      const building = view;
      building.built.catch(() => {
        if (this.#views.get(storePath) === building) this.#views.delete(storePath);
      });
    }
    view.holders += 1;
    const held = view;
    try {
      const dir = await held.built;
      let released = false;
      return {
        dir,
        release: () => {
          if (released) return;
          released = true;
          held.holders -= 1;
          held.lastReleased = Date.now();
        },
      };
    } catch (error) {
      held.holders -= 1;
      throw error;
    }
  }

  /** How many views are built or being built. */
  get size(): number {
    return this.#views.size;
  }

  /**
   * Removes the views no shoot holds and none has released for `idleMs`; returns the
   * store paths whose views went.
   */
  async evictIdle(now = Date.now()): Promise<string[]> {
    const evicted: string[] = [];
    for (const [storePath, view] of [...this.#views]) {
      if (view.holders > 0 || now - view.lastReleased < this.#options.idleMs) continue;
      const dir = await view.built.catch(() => undefined);
      // Held again while its build was awaited, or already replaced.
      if (view.holders > 0 || this.#views.get(storePath) !== view) continue;
      this.#views.delete(storePath);
      if (dir !== undefined) {
        const removal = this.#remove(dir).finally(() => this.#removing.delete(storePath));
        this.#removing.set(storePath, removal);
        await removal;
      }
      evicted.push(storePath);
    }
    return evicted;
  }

  /** Unmounts and removes every view (and any a previous daemon left). */
  async clear(): Promise<void> {
    await Promise.allSettled([
      ...[...this.#views.values()].map((view) => view.built),
      ...this.#removing.values(),
    ]);
    this.#views.clear();
    for (const point of await mountsUnder(this.#options.root)) await unmount(point);
    await removeUnmountedTree(this.#options.root);
  }

  async #remove(view: string): Promise<void> {
    for (const point of await mountsUnder(view)) await unmount(point);
    await removeUnmountedTree(view);
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
        bindMount(member, entry, { readOnly: true });
      }
    } catch (error) {
      await this.#remove(view).catch(() => undefined);
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
