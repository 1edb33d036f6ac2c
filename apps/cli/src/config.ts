import { existsSync } from 'node:fs';
import { z } from 'zod';

const DEFAULT_NIX_CONF = '/etc/seed/nix.conf';

const envSchema = z.object({
  SEED_NIX_BIN: z.string().min(1).default('nix'),
  SEED_NIX_CONF: z
    .string()
    .min(1)
    .refine((file) => existsSync(file), { error: 'names a file that does not exist' })
    .optional(),
});

export interface CliConfig {
  nix: { binary: string; confFile?: string };
}

/**
 * Reads the CLI's environment. Seed's own nix.conf (installed by scripts/setup) is used
 * when present, so a local run never waits on a binary cache it cannot reach.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): CliConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`);
    throw new Error(`invalid environment: ${problems.join('; ')}`);
  }
  const confFile =
    parsed.data.SEED_NIX_CONF ?? (existsSync(DEFAULT_NIX_CONF) ? DEFAULT_NIX_CONF : undefined);
  return { nix: { binary: parsed.data.SEED_NIX_BIN, confFile } };
}
