import { readFileSync } from 'node:fs';
import { DEFAULT_MAX_QUEUED_BUILDS } from '@seed/builds-queue';
import {
  FORGES,
  deriveNamespace,
  flakeRegistryEntries,
  flakeHookId,
  flakeQuotaOverridesSchema,
  forgeStatusSchema,
  parseFlakeRef,
  gitRemoteOf,
  redactFlakeRef,
  withQuotaDefaults,
  type FlakeQuota,
  type Forge,
} from '@seed/contracts';
import { ConfigError } from '@seed/service-kit';
import { z } from 'zod';
import type { PolledFlake } from './branch-poller';
import { normalizeRepository, type RepositoryIdentity } from './deliveries';

/** A flake the operator has Seed serve, and the repository whose pushes deploy it. */
export interface RegisteredFlake {
  flake: string;
  /** Normalised `host/owner/repo`, or `owner/repo` to match on any host. */
  repository: string;
  /** The branch that deploys; the repository's default branch when unset. */
  branch?: string;
  secret: string;
  /** The id of its own delivery URL, `POST /hooks/<hookId>` (`flakeHookId`). */
  hookId: string;
  /** The most of its builds that may wait for a builder at once. */
  maxQueuedBuilds: number;
  /** What the flake's instances may take of the cluster: the entry's caps over the defaults. */
  quota: FlakeQuota;
  /** How often its branch head is polled; the service's default when unset, 0 for never. */
  pollIntervalSeconds?: number;
  /** The forge hosting the repository, for the builds a poll queues (deliveries say it). */
  forge?: Forge;
}

/** Why a registered flake is not polled, or how it is. */
export type PollPlan = { polled: PolledFlake } | { skipped: string };

// git check-ref-format, the parts that matter for a branch name in a config file.
// eslint-disable-next-line no-control-regex -- control characters are what it refuses
const BRANCH = /^(?!-)(?!.*\.\.)(?!.*\/\/)(?!.*@\{)[^\s~^:?*[\\\x00-\x1f\x7f]+(?<![./])$/;

const entrySchema = z
  .strictObject({
    flake: z.string().superRefine((flake, ctx) => {
      try {
        parseFlakeRef(flake);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
      }
    }),
    repository: z.string().min(1, { error: 'names the repository whose pushes deploy the flake' }),
    branch: z.string().regex(BRANCH, { error: 'is not a valid git branch name' }).optional(),
    secret: z.string().min(1).optional(),
    secretFile: z.string().min(1).optional(),
    secretEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .optional(),
    maxQueuedBuilds: z
      .int({ error: 'must be a whole number of builds' })
      .min(1, { error: 'must be at least 1' })
      .max(1000, { error: 'must be at most 1000' })
      .default(DEFAULT_MAX_QUEUED_BUILDS),
    // Read by the builder, which sends the statuses; checked here with the rest.
    forgeStatus: forgeStatusSchema.optional(),
    quota: flakeQuotaOverridesSchema.optional(),
    pollIntervalSeconds: z
      .int({ error: 'must be a whole number of seconds' })
      .min(0, { error: 'must be 0 (never) or more' })
      .max(86_400, { error: 'must be at most 86400 (a day)' })
      .optional(),
    forge: z.enum(FORGES).optional(),
  })
  .refine(
    (entry) => [entry.secret, entry.secretFile, entry.secretEnv].filter(Boolean).length === 1,
    {
      error:
        'give exactly one of secret, secretFile or secretEnv (webhook secrets have no default)',
    },
  );

/** The flakes Seed serves, looked up by the repository a delivery names. */
export class FlakeRegistry {
  private readonly hooks: ReadonlyMap<string, RegisteredFlake>;
  private readonly byUri: ReadonlyMap<string, RegisteredFlake>;

  constructor(readonly flakes: readonly RegisteredFlake[]) {
    this.hooks = new Map(flakes.map((flake) => [flake.hookId, flake]));
    this.byUri = new Map(flakes.map((flake) => [flake.flake, flake]));
  }

  /** The flake's cap of builds waiting for a builder. */
  maxQueuedBuilds(flake: string): number {
    return this.byUri.get(flake)?.maxQueuedBuilds ?? DEFAULT_MAX_QUEUED_BUILDS;
  }

  /**
   * How each flake is polled: every `defaultIntervalSeconds` unless its entry says
   * otherwise, from the git remote its URI names, as the forge its entry or host says.
   */
  pollPlans(defaultIntervalSeconds: number): Map<string, PollPlan> {
    return new Map(
      this.flakes.map((flake) => [flake.flake, pollPlan(flake, defaultIntervalSeconds)]),
    );
  }

  /** The flake whose own delivery URL has this id. */
  byHook(hookId: string): RegisteredFlake | undefined {
    return this.hooks.get(hookId);
  }

  /** Every registered flake following the delivery's repository, whatever its branch. */
  following(repository: RepositoryIdentity): RegisteredFlake[] {
    return this.flakes.filter((flake) => repository.names.includes(flake.repository));
  }
}

/** The forges a repository's host names by itself; any other needs the entry's `forge`. */
const FORGE_HOSTS: Record<string, Forge> = { 'github.com': 'github', 'gitlab.com': 'gitlab' };

function pollPlan(flake: RegisteredFlake, defaultIntervalSeconds: number): PollPlan {
  const intervalSeconds = flake.pollIntervalSeconds ?? defaultIntervalSeconds;
  if (intervalSeconds === 0) return { skipped: 'polling is off (interval 0)' };
  const remote = gitRemoteOf(flake.flake);
  if (!remote) return { skipped: 'not a git flake: nothing to poll' };
  const forge =
    flake.forge ??
    (flake.flake.startsWith('github:') ? 'github' : FORGE_HOSTS[flake.repository.split('/')[0]!]);
  if (!forge) {
    return { skipped: 'set its forge (github, gitea, forgejo or gitlab) to poll it' };
  }
  return {
    polled: {
      flake: flake.flake,
      remote: remote.url,
      branch: flake.branch ?? remote.ref,
      intervalMs: intervalSeconds * 1000,
      forge,
      quota: flake.quota,
    },
  };
}

function readSecret(
  entry: z.infer<typeof entrySchema>,
  env: NodeJS.ProcessEnv,
  where: string,
): string {
  if (entry.secret !== undefined) return entry.secret;
  if (entry.secretEnv !== undefined) {
    const secret = env[entry.secretEnv];
    if (!secret) throw new Error(`${where}.secretEnv: ${entry.secretEnv} is not set`);
    return secret;
  }
  try {
    const secret = readFileSync(entry.secretFile!, 'utf8').trim();
    if (!secret) throw new Error('the file is empty');
    return secret;
  } catch (error) {
    throw new Error(
      `${where}.secretFile: cannot read ${entry.secretFile}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/**
 * Parses a registry document (YAML or JSON: `flakes: [...]` or a bare list). Every bad
 * entry is reported, by index and flake, before the service opens its port.
 */
export function parseFlakeRegistry(
  document: string,
  origin: string,
  env: NodeJS.ProcessEnv,
): FlakeRegistry {
  const read = flakeRegistryEntries(document, origin);
  if ('problem' in read) throw new ConfigError([read.problem]);
  const problems: string[] = [];
  const flakes: RegisteredFlake[] = [];
  read.entries.forEach((candidate, index) => {
    const label = record(candidate)?.flake;
    const where = `${origin}: flakes[${index}]${typeof label === 'string' ? ` (${redactFlakeRef(label)})` : ''}`;
    const entry = entrySchema.safeParse(candidate);
    if (!entry.success) {
      for (const issue of entry.error.issues) {
        problems.push(
          `${where}${issue.path.length ? `.${issue.path.join('.')}` : ''}: ${issue.message}`,
        );
      }
      return;
    }
    try {
      const secret = readSecret(entry.data, env, where);
      flakes.push({
        flake: entry.data.flake,
        repository: normalizeRepository(entry.data.repository),
        branch: entry.data.branch,
        secret,
        hookId: flakeHookId(entry.data.flake, secret),
        maxQueuedBuilds: entry.data.maxQueuedBuilds,
        quota: withQuotaDefaults(entry.data.quota),
        pollIntervalSeconds: entry.data.pollIntervalSeconds,
        forge: entry.data.forge,
      });
    } catch (error) {
      problems.push((error as Error).message);
    }
  });
  const seen = new Set<string>();
  // The namespace name keeps only about 30 bits of the URI's hash: two flakes can share
  // one, and the reconciler would refuse the second's generations forever.
  const namespaces = new Map<string, string>();
  for (const flake of flakes) {
    if (seen.has(flake.flake)) problems.push(`${origin}: flake ${flake.flake} is registered twice`);
    seen.add(flake.flake);
    const namespace = deriveNamespace(flake.flake);
    const other = namespaces.get(namespace);
    if (other !== undefined && other !== flake.flake)
      problems.push(
        `${origin}: flakes ${redactFlakeRef(other)} and ${redactFlakeRef(flake.flake)} map to one namespace (${namespace}); register only one of them`,
      );
    namespaces.set(namespace, flake.flake);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return new FlakeRegistry(flakes);
}

/** Reads the registry from a file or an inline document, whichever the operator gave. */
export function loadFlakeRegistry(
  source: { file?: string; inline?: string },
  env: NodeJS.ProcessEnv,
): FlakeRegistry {
  if (source.inline !== undefined) return parseFlakeRegistry(source.inline, 'SEED_FLAKES', env);
  if (source.file === undefined) {
    throw new ConfigError(['SEED_FLAKES_FILE or SEED_FLAKES: name the flakes Seed serves']);
  }
  let document: string;
  try {
    document = readFileSync(source.file, 'utf8');
  } catch (error) {
    throw new ConfigError([
      `SEED_FLAKES_FILE: cannot read ${source.file}: ${(error as Error).message}`,
    ]);
  }
  return parseFlakeRegistry(document, source.file, env);
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null
    ? (value as Record<string, unknown>)
    : undefined;
}
