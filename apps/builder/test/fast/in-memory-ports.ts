// In-memory stand-ins for BuildService's ports, for the fast tier: each records what the
// service asked of it and answers from a script the test sets. The real parts behind
// these ports (nix, Redis, the reconciler) are tested in test/*.test.ts.
import type {
  ApplyGenerationRequest,
  ApplyGenerationResponse__Output,
  BuildJob,
  BuildRecord,
  CommitStatusEvent,
  SeedMeta,
} from '@seed/contracts';
import type { BuiltSeed, EvaluatedSeed, LockedFlake } from '@seed/nix-eval';
import type { Ancestry } from '../../src/repositories/git-history.repository';
import type { BuildRoots } from '../../src/generation-roots';
import type {
  BinaryCache,
  BuildKeeper,
  BuildRecords,
  CommitHistory,
  CommitStatusReporter,
  GenerationSink,
  NixSteps,
} from '../../src/build.service';

export class InMemoryBuildRecords implements BuildRecords {
  readonly records = new Map<string, BuildRecord>();
  /** Every state a record was saved in, in order, by id. */
  readonly history = new Map<string, string[]>();
  readonly latestByFlake = new Map<string, string>();

  async get(id: string): Promise<BuildRecord | undefined> {
    const record = this.records.get(id);
    return record && structuredClone(record);
  }

  async save(record: BuildRecord): Promise<void> {
    this.records.set(record.id, structuredClone(record));
    this.history.set(record.id, [...(this.history.get(record.id) ?? []), record.state]);
  }

  async latest(flake: string): Promise<string | undefined> {
    return this.latestByFlake.get(flake);
  }
}

/** Nix as a script: each seed's meta, and a step that fails when told to. */
export class ScriptedNix implements NixSteps {
  readonly calls: string[] = [];
  failWith: Partial<Record<'resolve' | 'evaluate' | 'build', Error>> = {};

  constructor(private readonly seeds: readonly SeedMeta[]) {}

  async resolve(reference: string): Promise<LockedFlake> {
    this.calls.push(`resolve ${reference}`);
    if (this.failWith.resolve) throw this.failWith.resolve;
    return { url: `${reference}&narHash=sha256-fake` };
  }

  async evaluateSeeds(reference: string): Promise<EvaluatedSeed[]> {
    this.calls.push(`evaluate ${reference}`);
    if (this.failWith.evaluate) throw this.failWith.evaluate;
    return this.seeds.map((meta) => ({
      name: meta.name,
      meta,
      imageDrv: `/nix/store/${'d'.repeat(32)}-${meta.name}.drv`,
    }));
  }

  async buildImages(seeds: readonly EvaluatedSeed[]): Promise<BuiltSeed[]> {
    this.calls.push(`build ${seeds.map((seed) => seed.name).join(',')}`);
    if (this.failWith.build) throw this.failWith.build;
    return seeds.map((seed) => ({
      ...seed,
      image: `/nix/store/${'i'.repeat(32)}-${seed.name}-image.tar`,
    }));
  }
}

export class RecordingCache implements BinaryCache {
  readonly published: string[][] = [];
  failWith: Error | undefined;

  async publish(paths: readonly string[]): Promise<void> {
    if (this.failWith) throw this.failWith;
    this.published.push([...paths]);
  }
}

/**
 * The reconciler's ApplyGeneration: answers `changed` unless told to fail; its applied
 * revision is the last one it took (or `runs`, set by the test).
 */
export class RecordingSink implements GenerationSink {
  readonly requests: ApplyGenerationRequest[] = [];
  failWith: Error | undefined;
  runs: string | undefined;

  async appliedRevision(): Promise<string | undefined> {
    return this.requests.at(-1)?.revision ?? this.runs;
  }

  async applyGeneration(request: ApplyGenerationRequest): Promise<ApplyGenerationResponse__Output> {
    if (this.failWith) throw this.failWith;
    const changed = this.requests.at(-1)?.generation !== request.generation;
    this.requests.push(request);
    return { changed, generation: request.generation ?? '' };
  }
}

/** The forge's commit statuses, as the build reported them. */
export class RecordingStatuses implements CommitStatusReporter {
  readonly events: CommitStatusEvent[] = [];

  report(_job: BuildJob, _jobId: string, event: CommitStatusEvent): void {
    this.events.push(event);
  }
}

/**
 * A repository's commit graph as child → parent, and its branch head; `git: false` stands
 * for a flake that is no git repository.
 */
export class InMemoryHistory implements CommitHistory {
  readonly parents = new Map<string, string | undefined>();
  readonly asked: string[] = [];
  head: string | undefined;
  git = true;

  async ancestry(
    _flake: string,
    _branch: string,
    applied: string,
    commit: string,
  ): Promise<Ancestry | undefined> {
    this.asked.push(`${applied}..${commit}`);
    if (!this.git) return undefined;
    if (this.isAncestor(applied, commit)) return 'descends';
    const head = this.head ?? commit;
    if (!this.isAncestor(applied, head) && this.isAncestor(commit, head)) return 'rewritten';
    return 'behind';
  }

  private isAncestor(ancestor: string, commit: string): boolean {
    for (let at: string | undefined = commit; at !== undefined; at = this.parents.get(at)) {
      if (at === ancestor) return true;
    }
    return false;
  }
}

/** The roots of each build as a log: `open <flake>`, `seal <generation>`, `discard`. */
export class RecordingKeeper implements BuildKeeper {
  readonly events: string[] = [];

  use<T>(step: () => Promise<T>): Promise<T> {
    return step();
  }

  async open(flake: string): Promise<BuildRoots> {
    this.events.push(`open ${flake}`);
    return {
      outLink: '/roots/image',
      seal: async (generation) => void this.events.push(`seal ${generation}`),
      discard: async () => void this.events.push('discard'),
    };
  }
}
