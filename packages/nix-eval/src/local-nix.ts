import { existsSync } from 'node:fs';

/** What scripts/setup installs: flakes on, no binary cache (see deploy/nix.conf). */
const SEED_NIX_CONF = '/etc/seed/nix.conf';

/**
 * The nix a command-line tool runs on this machine and the nix.conf layered over the
 * user's: options for a NixClient.
 */
export interface LocalNix {
  nixBinary: string;
  confFile?: string;
}

/**
 * `SEED_NIX_BIN` (default `nix`) and `SEED_NIX_CONF`, else Seed's own nix.conf when
 * scripts/setup installed it, so a local run never waits on a binary cache it cannot reach.
 * Throws with the variable's name when it names a file that does not exist.
 */
export function localNix(env: NodeJS.ProcessEnv = process.env): LocalNix {
  const confFile = env.SEED_NIX_CONF || undefined;
  if (confFile !== undefined && !existsSync(confFile)) {
    throw new Error(`SEED_NIX_CONF names a file that does not exist: ${confFile}`);
  }
  return {
    nixBinary: env.SEED_NIX_BIN || 'nix',
    confFile: confFile ?? (existsSync(SEED_NIX_CONF) ? SEED_NIX_CONF : undefined),
  };
}
