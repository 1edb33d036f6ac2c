import type { CallOptions, CollectedGarbage } from '@seed/nix-eval';
import type { GcOutcome, GcTrigger, Logger } from '@seed/service-kit';
import type { BuildKeeper } from './build.service';
import type { BuildRoots, GenerationRoots } from './generation-roots';
import { StoreGate } from './store-gate';

/** The builder's store (NixClient). */
export interface StoreCollector {
  collectGarbage(call?: CallOptions): Promise<CollectedGarbage>;
}

/** The binary cache (FileBinaryCache). */
export interface CacheCollector {
  readonly dir: string;
  collectGarbage(liveImages: readonly string[]): Promise<GcOutcome>;
}

/**
 * What stays in the builder's stores: the closures of each flake's last generations
 * (GenerationRoots), in the nix store and in the binary cache alike, and nothing else.
 * Builds use the store through it; `collect` runs the collections while no build is
 * between evaluating and publishing (StoreGate).
 */
export class StoreKeeper implements BuildKeeper {
  readonly #gate = new StoreGate();

  constructor(
    private readonly roots: GenerationRoots,
    /** The nix store and its folder; undefined when it is not the builder's own to collect. */
    private readonly store: { nix: StoreCollector; dir: string } | undefined,
    private readonly cache: CacheCollector | undefined,
    private readonly logger: Logger,
  ) {}

  use<T>(step: () => Promise<T>): Promise<T> {
    return this.#gate.use(step);
  }

  open(flake: string): Promise<BuildRoots> {
    return this.roots.open(flake);
  }

  /** The folders a collection frees space in: what the disk-pressure check watches. */
  get folders(): string[] {
    return [this.store?.dir, this.cache?.dir].filter((dir): dir is string => dir !== undefined);
  }

  readonly collect = (trigger: GcTrigger): Promise<GcOutcome[]> =>
    this.#gate.exclusive(async () => {
      const outcomes: GcOutcome[] = [];
      if (this.store !== undefined) {
        outcomes.push({ store: this.store.dir, ...(await this.store.nix.collectGarbage()) });
      }
      if (this.cache !== undefined) {
        const live = await this.roots.liveImages();
        // No roots at all is a lost roots folder far more likely than a builder that
        // built nothing: emptying the cache would leave running instances unpullable.
        if (live.length === 0) {
          this.logger.warn({ trigger }, 'no generation roots: the binary cache is left alone');
        } else {
          outcomes.push(await this.cache.collectGarbage(live));
        }
      }
      return outcomes;
    });
}
