import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { flakeKey } from '@seed/contracts';

/** One build's folder of GC roots, as `GenerationRoots` finds it. */
export interface RootsFolder {
  /** `<start time, ms, 15 digits>-<random>`: sorting names sorts builds by start. */
  name: string;
  startedAt: number;
  /** The generation the build produced; undefined while it runs (or if its process died). */
  generation?: string;
}

/**
 * Which of a flake's roots folders to drop: every sealed folder past the newest one of each
 * of the `keep` newest generations (a generation built twice is kept once, by its newest
 * build), and unsealed ones older than `unsealedMaxAgeMs` (their build's process died;
 * a running build is younger). Pure: the tests call it directly.
 */
export function rootsToDrop(
  folders: readonly RootsFolder[],
  keep: number,
  now: number,
  unsealedMaxAgeMs: number,
): string[] {
  const kept = new Set<string>();
  const drop: string[] = [];
  for (const folder of [...folders].sort((a, b) => (a.name < b.name ? 1 : -1))) {
    if (folder.generation === undefined) {
      if (now - folder.startedAt > unsealedMaxAgeMs) drop.push(folder.name);
    } else if (kept.size < keep && !kept.has(folder.generation)) {
      kept.add(folder.generation);
    } else {
      drop.push(folder.name);
    }
  }
  return drop;
}

/** One build's GC roots: nix links its images there as it builds them. */
export interface BuildRoots {
  /** `nix build --out-link` target: `image`, `image-1`, … in this build's folder. */
  outLink: string;
  /** The build produced `generation`: it joins the flake's kept ones, the oldest past the bound go. */
  seal(generation: string): Promise<void>;
  /** The build failed: nothing of it is kept (a kept generation may still hold its paths). */
  discard(): Promise<void>;
}

export interface GenerationRootsOptions {
  /** `<dir>/<flake key>/<build>/image…`; nix's store links each image as an indirect root. */
  dir: string;
  /** Generations of each flake whose closures stay, so rollback finds them. */
  keep: number;
  /** Longer than any build runs: an unsealed folder this old belongs to a dead process. */
  unsealedMaxAgeMs: number;
}

const GENERATION_FILE = 'generation';

/**
 * The builder's GC roots: per flake, one folder per build, each holding the out-links nix
 * made of the build's images (indirect roots: the store's `gcroots/auto` points at them,
 * so deleting a folder unroots its images, and the next collection removes the stale
 * link). What stays is the closures of each flake's last `keep` generations; the binary
 * cache keeps the same set (`liveImages`).
 */
export class GenerationRoots {
  constructor(
    private readonly options: GenerationRootsOptions,
    private readonly now: () => number = Date.now,
  ) {}

  async open(flake: string): Promise<BuildRoots> {
    const flakeDir = path.join(this.options.dir, flakeKey(flake));
    const startedAt = this.now();
    const folder = path.join(
      flakeDir,
      `${String(startedAt).padStart(15, '0')}-${randomBytes(4).toString('hex')}`,
    );
    await mkdir(folder, { recursive: true });
    return {
      outLink: path.join(folder, 'image'),
      seal: async (generation) => {
        await writeFile(path.join(folder, GENERATION_FILE), generation);
        await this.prune(flakeDir);
      },
      discard: () => rm(folder, { recursive: true, force: true }),
    };
  }

  /** The store paths every roots folder links to (sealed or not): what must stay published. */
  async liveImages(): Promise<string[]> {
    const images = new Set<string>();
    for (const flake of await entries(this.options.dir)) {
      for (const build of await entries(path.join(this.options.dir, flake))) {
        const folder = path.join(this.options.dir, flake, build);
        for (const link of await entries(folder)) {
          if (!link.startsWith('image')) continue;
          images.add(await readlink(path.join(folder, link)));
        }
      }
    }
    return [...images].sort();
  }

  private async prune(flakeDir: string): Promise<void> {
    const folders: RootsFolder[] = [];
    for (const name of await entries(flakeDir)) {
      const match = /^(\d{15})-/.exec(name);
      if (!match) continue;
      const generation = await readFile(path.join(flakeDir, name, GENERATION_FILE), 'utf8').catch(
        () => undefined,
      );
      folders.push({ name, startedAt: Number(match[1]), generation });
    }
    const drop = rootsToDrop(folders, this.options.keep, this.now(), this.options.unsealedMaxAgeMs);
    for (const name of drop) await rm(path.join(flakeDir, name), { recursive: true, force: true });
  }
}

async function entries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}
