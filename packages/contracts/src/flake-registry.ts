import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { redactFlakeRef } from './flake-ref';
import { seedFlakeSettingsSchema, type SeedFlakeSettings } from './seed-flake';

/**
 * The flake registry document (docs/operator-guide.md): YAML or JSON, `flakes: [...]` or
 * a bare list of SeedFlake settings, each with its webhook secret. It seeds the SeedFlakes
 * of the local stack (`seed up`, `seed flakes apply`), and serves a webhook run without a
 * cluster (tests).
 */
const registryDocumentSchema = z.union([
  z.strictObject({ flakes: z.array(z.unknown()) }),
  z.array(z.unknown()).transform((flakes) => ({ flakes })),
]);

/**
 * The registry's entries, each still to be checked by its reader, or why the document is
 * not a registry (naming `origin`).
 */
function flakeRegistryEntries(
  document: string,
  origin: string,
): { entries: unknown[] } | { problem: string } {
  let raw: unknown;
  try {
    raw = parseYaml(document) as unknown;
  } catch (error) {
    return { problem: `${origin}: not valid YAML or JSON: ${(error as Error).message}` };
  }
  const registry = registryDocumentSchema.safeParse(raw);
  if (!registry.success) {
    return { problem: `${origin}: expected "flakes: [...]" or a list of flakes` };
  }
  return { entries: registry.data.flakes };
}

/** One registry entry: a SeedFlake's settings, its name, and where its secret is. */
const registryEntrySchema = seedFlakeSettingsSchema
  .extend({
    /** The SeedFlake's name; derived from the flake when left out. */
    name: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, { error: 'must be a DNS label' })
      .optional(),
    secret: z.string().min(1).optional(),
    secretFile: z.string().min(1).optional(),
    secretEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .optional(),
  })
  .refine(
    (entry) => [entry.secret, entry.secretFile, entry.secretEnv].filter(Boolean).length === 1,
    {
      error:
        'give exactly one of secret, secretFile or secretEnv (webhook secrets have no default)',
    },
  );
type RegistryEntry = z.output<typeof registryEntrySchema>;

export interface FlakeRegistryEntry {
  name?: string;
  settings: SeedFlakeSettings;
  secret: string;
}

/**
 * Reads and checks every entry of a registry document, with its secret (inline, from a
 * file or from a variable of `env`); every problem is named by index and flake.
 */
export function readFlakeRegistry(
  document: string,
  origin: string,
  env: NodeJS.ProcessEnv,
): { entries: FlakeRegistryEntry[] } | { problems: string[] } {
  const read = flakeRegistryEntries(document, origin);
  if ('problem' in read) return { problems: [read.problem] };
  const problems: string[] = [];
  const entries: FlakeRegistryEntry[] = [];
  read.entries.forEach((candidate, index) => {
    const label =
      typeof candidate === 'object' && candidate !== null
        ? (candidate as Record<string, unknown>).flake
        : undefined;
    const where = `${origin}: flakes[${index}]${typeof label === 'string' ? ` (${redactFlakeRef(label)})` : ''}`;
    const entry = registryEntrySchema.safeParse(candidate);
    if (!entry.success) {
      for (const issue of entry.error.issues) {
        problems.push(
          `${where}${issue.path.length ? `.${issue.path.join('.')}` : ''}: ${issue.message}`,
        );
      }
      return;
    }
    try {
      const { name, secret: _secret, secretFile: _file, secretEnv: _env, ...settings } = entry.data;
      entries.push({ name, settings, secret: entrySecret(entry.data, env, where) });
    } catch (error) {
      problems.push((error as Error).message);
    }
  });
  return problems.length > 0 ? { problems } : { entries };
}

function entrySecret(entry: RegistryEntry, env: NodeJS.ProcessEnv, where: string): string {
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
