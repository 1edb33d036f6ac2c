import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { flakeKey, type FlakeRegistryEntry } from '@seed/contracts';
import type { SeedFlakeClient } from './seed-flakes';

/** The SeedFlake name of a registry entry: its own, or one derived from its flake. */
export function seedFlakeName(entry: FlakeRegistryEntry): string {
  return entry.name ?? `flake-${flakeKey(entry.settings.flake).slice(0, 12)}`;
}

/**
 * Seeds the SeedFlakes of a registry document: each entry's secret becomes the file
 * `secretsDir/<name>` (what the webhook's mounted Secret holds in a cluster) and its
 * settings a SeedFlake of that name with `secretKey: <name>`. Returns the names, in order.
 */
export async function applyFlakeRegistry(
  flakes: SeedFlakeClient,
  entries: readonly FlakeRegistryEntry[],
  secretsDir: string,
): Promise<string[]> {
  await mkdir(secretsDir, { recursive: true, mode: 0o700 });
  const names: string[] = [];
  for (const entry of entries) {
    const name = seedFlakeName(entry);
    await writeFile(path.join(secretsDir, name), `${entry.secret}\n`, { mode: 0o600 });
    await flakes.apply(name, { ...entry.settings, secretKey: name });
    names.push(name);
  }
  return names;
}
