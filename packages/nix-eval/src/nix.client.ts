import {
  META_LIMITS,
  deriveNamespace,
  generationHash,
  parseSeedMeta,
  type SeedMeta,
} from '@seed/contracts';
import { z } from 'zod';
import { classifyNixFailure, type NixPhase } from './classify';
import { NixError } from './errors';
import { checkedFlakeRef, pinFlakeRef } from './flake-ref';
import { runProcess } from './process';

export interface NixClientOptions {
  /** The nix binary; `nix` on PATH by default. */
  nixBinary?: string;
  /**
   * A nix.conf layered over the system's and the user's (through NIX_USER_CONF_FILES,
   * read last), so Seed's settings apply without rewriting anyone's configuration.
   */
  confFile?: string;
  /** The environment nix runs in; the current process's by default. */
  env?: NodeJS.ProcessEnv;
  resolveTimeoutMs?: number;
  evaluateTimeoutMs?: number;
  buildTimeoutMs?: number;
  /**
   * Cap on what one nix command may print to stdout (DEFAULT_MAX_OUTPUT_BYTES): past it nix
   * is killed and the call fails `output-limit`, before anything is parsed. A flake's
   * metas are the only large output, and parsing them costs this process memory.
   */
  maxOutputBytes?: number;
  /**
   * The store every nix call uses (`--store`), e.g. a chroot store `/var/lib/seed/store`
   * whose paths are still `/nix/store/…` but live under that folder. Nix's default store
   * (`/nix`, or the daemon) when left out. A chroot store always builds in nix's sandbox:
   * its nix.conf needs `sandbox-paths` for whatever builders expect (docs/builder.md).
   */
  store?: string;
  /** Limit of each `nix copy` / `nix store sign` to a binary cache. */
  publishTimeoutMs?: number;
}

export interface SigningKey {
  /** `name:base64`, the contents of a secret key file (`nix key generate-secret`). */
  secretKey: string;
  /** `name:base64`, what substituters trust (`trusted-public-keys`). */
  publicKey: string;
}

export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface BuildOptions extends CallOptions {
  /**
   * Roots what is built (`--out-link`): `<outLink>` for the first image, `<outLink>-1`, … for
   * the next, each an indirect GC root of the store, from the moment the build ends, so
   * no garbage collection can take the images before their caller roots them otherwise.
   */
  outLink?: string;
}

/** What one garbage collection took (`nix store gc`). */
export interface CollectedGarbage {
  deletedPaths: number;
  /** As nix reports it: to the hundredth of a MiB. */
  freedBytes: number;
}

export interface InspectOptions extends CallOptions {
  /** Inspect this git commit instead of the reference's head. */
  revision?: string;
  /** The branch holding `revision`, so nix finds commits off the default branch. */
  branch?: string;
}

export interface LockedFlake {
  /** The locked reference: evaluating it always sees the same sources. */
  url: string;
  /** The git commit, when the flake comes from git. */
  revision?: string;
  lastModified?: number;
  narHash?: string;
}

export interface EvaluatedSeed {
  name: string;
  meta: SeedMeta;
  /** The `.drv` of `seeds.<name>.image`; building it yields the image. */
  imageDrv: string;
}

export interface BuiltSeed extends EvaluatedSeed {
  /** Store path of the built image, what the Deployment runs as `nix:0<image>`. */
  image: string;
}

export interface FlakeInspection {
  flake: LockedFlake;
  namespace: string;
  generation: string;
  seeds: BuiltSeed[];
}

const metadataSchema = z.object({
  url: z.string(),
  revision: z.string().optional(),
  lastModified: z.number().optional(),
  locked: z.object({ narHash: z.string().optional() }).passthrough(),
});

const evaluatedSchema = z.record(
  z.string(),
  z.object({ meta: z.unknown(), image: z.string().regex(/^\/nix\/store\/[^/]+\.drv$/) }),
);

const builtSchema = z.array(
  z.object({ drvPath: z.string(), outputs: z.record(z.string(), z.string()) }),
);

// One nix process evaluates every seed: `meta` type-checks its instance, `image.drvPath`
// instantiates the image without building it.
const SEEDS_APPLY =
  'seeds: builtins.mapAttrs (name: seed: { meta = seed.meta; image = seed.image.drvPath; }) seeds';

const MINUTE = 60_000;

/** 4 MiB: hundreds of times the metas of a flake at Seed's instance limit. */
export const DEFAULT_MAX_OUTPUT_BYTES = 4 * 1024 * 1024;

/** A typed wrapper over the real `nix` CLI for the steps from a pushed flake to its images. */
export class NixClient {
  private readonly nixBinary: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly maxOutputBytes: number;

  constructor(private readonly options: NixClientOptions = {}) {
    this.nixBinary = options.nixBinary ?? 'nix';
    this.maxOutputBytes = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
    this.env = { ...(options.env ?? process.env) };
    if (options.confFile !== undefined) this.env.NIX_USER_CONF_FILES = options.confFile;
  }

  /** The nix version string (`nix --version`): tells that nix runs at all. */
  async version(call: CallOptions = {}): Promise<string> {
    const stdout = await this.run('resolve', ['--version'], {
      ...call,
      timeoutMs: call.timeoutMs ?? 10_000,
    });
    return stdout.trim();
  }

  /**
   * Whether this client's store answers (`nix store ping`): the builder's nix-daemon may
   * be down while the nix binary runs. Resolves, or throws a NixError naming why.
   */
  async pingStore(call: CallOptions = {}): Promise<void> {
    await this.run('resolve', ['store', 'ping'], { ...call, timeoutMs: call.timeoutMs ?? 10_000 });
  }

  /** Locks a flake reference to one revision (`nix flake metadata`). */
  async resolve(reference: string, call: CallOptions = {}): Promise<LockedFlake> {
    const flake = checkedFlakeRef(reference);
    const stdout = await this.run(
      'resolve',
      ['flake', 'metadata', '--json', '--no-write-lock-file', flake.url],
      { ...call, timeoutMs: call.timeoutMs ?? this.options.resolveTimeoutMs ?? 5 * MINUTE },
    );
    const metadata = parseJson(metadataSchema, stdout, 'nix flake metadata');
    return {
      url: metadata.url,
      revision: metadata.revision,
      lastModified: metadata.lastModified,
      narHash: metadata.locked.narHash,
    };
  }

  /** Evaluates and validates the meta of every seed of a flake in one nix process. */
  async evaluateSeeds(reference: string, call: CallOptions = {}): Promise<EvaluatedSeed[]> {
    const flake = checkedFlakeRef(reference);
    const stdout = await this.run(
      'evaluate',
      ['eval', '--json', '--no-write-lock-file', `${flake.url}#seeds`, '--apply', SEEDS_APPLY],
      { ...call, timeoutMs: call.timeoutMs ?? this.options.evaluateTimeoutMs ?? 5 * MINUTE },
    );
    const evaluated = parseJson(evaluatedSchema, stdout, 'seeds');
    const count = Object.keys(evaluated).length;
    if (count > META_LIMITS.instancesPerFlake) {
      throw new NixError(
        'validation',
        `seeds: ${count} instances; a flake may have at most ${META_LIMITS.instancesPerFlake} (Seed's limit)`,
      );
    }
    return Object.entries(evaluated)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([name, seed]) => {
        const parsed = parseSeedMeta(seed.meta, name);
        if (!parsed.ok) {
          const problems = parsed.problems.map((p) => `seeds.${name}.meta.${p.path}: ${p.message}`);
          throw new NixError('validation', problems.join('; '));
        }
        return { name, meta: parsed.meta, imageDrv: seed.image };
      });
  }

  /** Builds every evaluated seed's image in one `nix build` and returns their store paths. */
  async buildImages(
    seeds: readonly EvaluatedSeed[],
    call: BuildOptions = {},
  ): Promise<BuiltSeed[]> {
    if (seeds.length === 0) return [];
    const drvs = [...new Set(seeds.map((seed) => seed.imageDrv))];
    const { outLink, ...rest } = call;
    const link = outLink === undefined ? ['--no-link'] : ['--out-link', outLink];
    const stdout = await this.run('build', ['build', ...link, '--json', ...drvs], {
      ...rest,
      timeoutMs: call.timeoutMs ?? this.options.buildTimeoutMs ?? 60 * MINUTE,
    });
    const outputs = new Map(
      parseJson(builtSchema, stdout, 'nix build').map((built) => [
        built.drvPath,
        built.outputs.out,
      ]),
    );
    return seeds.map((seed) => {
      const image = outputs.get(seed.imageDrv);
      if (image === undefined) {
        throw new NixError('build', `seeds.${seed.name}.image: nix built no "out" output`, {
          derivation: seed.imageDrv,
        });
      }
      return { ...seed, image };
    });
  }

  /**
   * Everything the builder needs from a flake: lock it (at `revision` when given), evaluate,
   * build, and identify. The namespace belongs to the flake URI as registered.
   */
  async inspect(flakeUri: string, call: InspectOptions = {}): Promise<FlakeInspection> {
    const reference =
      call.revision === undefined
        ? flakeUri
        : pinFlakeRef(flakeUri, call.revision, call.branch).url;
    const flake = await this.resolve(reference, call);
    const seeds = await this.buildImages(await this.evaluateSeeds(flake.url, call), call);
    return {
      flake,
      namespace: deriveNamespace(flakeUri),
      generation: generationHash(seeds),
      seeds,
    };
  }

  /**
   * Copies the closures of `paths` from this client's store to another store
   * (`nix copy --to`), e.g. a binary cache `file:///dir?secret-key=…`. Paths the
   * destination already holds are skipped as they are, signatures included.
   */
  async copyClosures(
    paths: readonly string[],
    destination: string,
    call: CallOptions = {},
  ): Promise<void> {
    if (paths.length === 0) return;
    await this.run('publish', ['copy', '--to', destination, ...paths], {
      ...call,
      timeoutMs: call.timeoutMs ?? this.options.publishTimeoutMs ?? 30 * MINUTE,
    });
  }

  /**
   * Signs the closures of `paths` in `store` (`nix store sign -r`) with a secret key file;
   * paths already signed by that key are left alone.
   */
  async signClosures(
    store: string,
    paths: readonly string[],
    secretKeyFile: string,
    call: CallOptions = {},
  ): Promise<void> {
    if (paths.length === 0) return;
    await this.run(
      'publish',
      ['store', 'sign', '--key-file', secretKeyFile, '--recursive', ...paths],
      { ...call, timeoutMs: call.timeoutMs ?? this.options.publishTimeoutMs ?? 30 * MINUTE },
      store,
    );
  }

  /**
   * Deletes every path of this client's store that no GC root reaches (`nix store gc`): its
   * roots folders, indirect roots whose links still exist, and what running processes
   * use. Through a nix-daemon the daemon collects, with its own view of the roots.
   */
  async collectGarbage(call: CallOptions = {}): Promise<CollectedGarbage> {
    const stdout = await this.run('collect', ['store', 'gc'], {
      ...call,
      timeoutMs: call.timeoutMs ?? 30 * MINUTE,
    });
    const summary = /(\d+) store paths deleted, ([\d.]+) MiB freed/.exec(stdout);
    if (!summary) throw new NixError('nix', `nix store gc printed no summary: ${stdout.trim()}`);
    return {
      deletedPaths: Number(summary[1]),
      freedBytes: Math.round(Number(summary[2]) * 1024 * 1024),
    };
  }

  /** A new ed25519 key pair for signing a binary cache (`nix key generate-secret`). */
  async generateSigningKey(name: string, call: CallOptions = {}): Promise<SigningKey> {
    if (!/^[A-Za-z0-9._-]+$/.test(name)) {
      throw new NixError(
        'nix',
        `signing key name ${JSON.stringify(name)}: use letters, digits, . _ -`,
        {
          retryable: false,
        },
      );
    }
    const secretKey = (
      await this.run('resolve', ['key', 'generate-secret', '--key-name', name], {
        ...call,
        timeoutMs: call.timeoutMs ?? 10_000,
      })
    ).trim();
    return { secretKey, publicKey: publicKeyOf(secretKey) };
  }

  private async run(
    phase: NixPhase,
    args: string[],
    call: CallOptions,
    store: string | undefined = this.options.store,
  ): Promise<string> {
    const argv = [
      this.nixBinary,
      '--extra-experimental-features',
      'nix-command flakes',
      ...(store === undefined ? [] : ['--store', store]),
      ...args,
    ];
    let outcome;
    try {
      outcome = await runProcess(argv, {
        env: this.env,
        timeoutMs: call.timeoutMs,
        signal: call.signal,
        maxStdoutBytes: this.maxOutputBytes,
      });
    } catch (error) {
      throw new NixError('nix', `cannot run ${this.nixBinary}: ${(error as Error).message}`, {
        retryable: false,
      });
    }
    switch (outcome.status) {
      case 'exited':
        if (outcome.code === 0) return outcome.stdout.toString('utf8');
        throw classifyNixFailure(phase, outcome.code, outcome.stderr);
      case 'timeout':
        throw new NixError(
          'timeout',
          `nix ${args[0]} ran past ${call.timeoutMs} ms and was killed`,
          {
            stderr: outcome.stderr,
          },
        );
      case 'aborted':
        throw new NixError('aborted', `nix ${args[0]} was cancelled`, { retryable: false });
      case 'output-limit':
        throw new NixError(
          'output-limit',
          `nix ${args[0]} printed more than ${this.maxOutputBytes} bytes, the limit of what Seed reads from nix: it was killed`,
          { retryable: false },
        );
    }
  }
}

/**
 * The public key (`name:base64`) of a nix secret signing key (`name:base64` of 64 bytes:
 * the ed25519 seed, then the public key), as `nix key convert-secret-to-public` prints it.
 */
export function publicKeyOf(secretKey: string): string {
  const match = /^([^:\s]+):([A-Za-z0-9+/]+={0,2})$/.exec(secretKey.trim());
  const bytes = match ? Buffer.from(match[2]!, 'base64') : undefined;
  if (!match || bytes?.length !== 64) {
    throw new NixError('nix', 'not a nix secret signing key (expected NAME:BASE64 of 64 bytes)', {
      retryable: false,
    });
  }
  return `${match[1]}:${bytes.subarray(32).toString('base64')}`;
}

function parseJson<T>(schema: z.ZodType<T>, stdout: string, what: string): T {
  let value: unknown;
  try {
    value = JSON.parse(stdout);
  } catch {
    throw new NixError('nix', `${what}: nix printed no valid JSON`);
  }
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue ? `${issue.path.join('.')}: ${issue.message}` : 'unexpected shape';
    // A seeds attribute that is not { meta; image; } is the flake's mistake, not nix's.
    throw new NixError(what === 'seeds' ? 'validation' : 'nix', `${what}.${where}`, {
      retryable: false,
    });
  }
  return result.data;
}
