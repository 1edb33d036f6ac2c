import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  DEFAULT_MAX_QUEUED_BUILDS,
  deriveNamespace,
  readFlakeRegistry,
  flakeHookId,
  gitRemoteOf,
  namespaceHolders,
  redactFlakeRef,
  seedFlakeSpecSchema,
  statusTargetOf,
  withQuotaDefaults,
  type FlakeQuota,
  type Forge,
  type ForgeStatusTarget,
  type SeedFlakeResource,
  type SeedFlakeSettings,
} from '@seed/contracts';
import { ConfigError } from '@seed/service-kit';
import type { FlakeBranch } from './branch-head';
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
  /** Its pushes and polls queue nothing (`seed rollback` set it; `seed resume` lifts it). */
  suspended: boolean;
  /** Where the builder sets the flake's commit statuses; travels with each build. */
  forgeStatus?: ForgeStatusTarget;
  /** The SeedFlake that registers it; none for a registry document's entry. */
  resource?: string;
}

/** Why a registered flake is not polled, or how it is. */
export type PollPlan = { polled: PolledFlake } | { skipped: string };

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

  /** The registered flake of a flake URI. */
  byFlake(flake: string): RegisteredFlake | undefined {
    return this.byUri.get(flake);
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

  /** The flake a SeedFlake registers. */
  byResource(resource: string): RegisteredFlake | undefined {
    return this.flakes.find((flake) => flake.resource === resource);
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
  if (flake.suspended) return { skipped: 'suspended (seed resume lifts it)' };
  const intervalSeconds = flake.pollIntervalSeconds ?? defaultIntervalSeconds;
  if (intervalSeconds === 0) return { skipped: 'polling is off (interval 0)' };
  const branch = flakeBranch(flake);
  if ('unreadable' in branch) return { skipped: branch.unreadable };
  return { polled: { ...branch, intervalMs: intervalSeconds * 1000 } };
}

/**
 * Where a flake's branch head is read, from the git remote its URI names, as the forge
 * its entry or host says; or why it cannot be.
 */
export function flakeBranch(flake: RegisteredFlake): FlakeBranch | { unreadable: string } {
  const remote = gitRemoteOf(flake.flake);
  if (!remote) return { unreadable: 'not a git flake: there is no branch to read' };
  const forge =
    flake.forge ??
    (flake.flake.startsWith('github:') ? 'github' : FORGE_HOSTS[flake.repository.split('/')[0]!]);
  if (!forge)
    return { unreadable: 'its forge is unknown: set its forge (github, gitea, forgejo or gitlab)' };
  return {
    flake: flake.flake,
    remote: remote.url,
    branch: flake.branch ?? remote.ref,
    forge,
    quota: flake.quota,
    ...(flake.forgeStatus && {
      forgeStatus: statusTargetOf(flake.forgeStatus, flake.repository),
    }),
  };
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
  const read = readFlakeRegistry(document, origin, env);
  if ('problems' in read) throw new ConfigError(read.problems);
  const problems: string[] = [];
  const flakes = read.entries.map(({ settings, secret }) => registeredFlake(settings, secret));
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

function registeredFlake(
  settings: SeedFlakeSettings,
  secret: string,
  resource?: string,
): RegisteredFlake {
  return {
    flake: settings.flake,
    repository: normalizeRepository(settings.repository),
    branch: settings.branch,
    secret,
    hookId: flakeHookId(settings.flake, secret),
    maxQueuedBuilds: settings.maxQueuedBuilds,
    quota: withQuotaDefaults(settings.quota),
    pollIntervalSeconds: settings.pollIntervalSeconds,
    forge: settings.forge,
    suspended: settings.suspend,
    forgeStatus: settings.forgeStatus,
    ...(resource !== undefined && { resource }),
  };
}

/** A SeedFlake the webhook does not serve, and why. */
export interface RefusedSeedFlake {
  resource: string;
  reason: string;
}

/**
 * The registry the SeedFlakes make: each with its webhook secret read from
 * `secretsDir/<secretKey>` (the mounted Secret, which the kubelet keeps current). A
 * SeedFlake whose namespace another holds, whose secret cannot be read, or whose spec
 * the API server let through but Seed cannot use is left out and named.
 */
export function registryFromSeedFlakes(
  resources: readonly SeedFlakeResource[],
  secretsDir: string,
): { registry: FlakeRegistry; refused: RefusedSeedFlake[] } {
  const live = resources.filter((resource) => resource.metadata.deletionTimestamp === undefined);
  const taken = namespaceHolders(live, deriveNamespace);
  const flakes: RegisteredFlake[] = [];
  const refused: RefusedSeedFlake[] = [];
  for (const resource of live) {
    const name = resource.metadata.name;
    const holder = taken.get(name);
    if (holder) {
      refused.push({
        resource: name,
        reason: `its namespace ${holder.namespace} belongs to SeedFlake ${holder.holder}`,
      });
      continue;
    }
    const spec = seedFlakeSpecSchema.safeParse(resource.spec);
    if (!spec.success) {
      const [issue] = spec.error.issues;
      refused.push({ resource: name, reason: `spec.${issue!.path.join('.')}: ${issue!.message}` });
      continue;
    }
    const file = path.join(secretsDir, spec.data.secretKey);
    let secret: string;
    try {
      secret = readFileSync(file, 'utf8').trim();
    } catch (error) {
      refused.push({
        resource: name,
        reason: `its webhook secret ${file} cannot be read: ${(error as Error).message}`,
      });
      continue;
    }
    if (secret === '') {
      refused.push({ resource: name, reason: `its webhook secret ${file} is empty` });
      continue;
    }
    flakes.push(registeredFlake(spec.data, secret, name));
  }
  return { registry: new FlakeRegistry(flakes), refused };
}

/** Reads the registry from a file or an inline document, whichever the operator gave. */
export function loadFlakeRegistry(
  source: { inline: string } | { file: string },
  env: NodeJS.ProcessEnv,
): FlakeRegistry {
  if ('inline' in source) return parseFlakeRegistry(source.inline, 'SEED_FLAKES', env);
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
