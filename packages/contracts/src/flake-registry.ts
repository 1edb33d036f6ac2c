import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/**
 * The flake registry document the operator writes (docs/operator-guide.md): YAML or JSON,
 * `flakes: [...]` or a bare list. The webhook checks every entry; the builder reads the
 * fields it needs (forge statuses). Each checks its entries; this owns the document.
 */
const registryDocumentSchema = z.union([
  z.strictObject({ flakes: z.array(z.unknown()) }),
  z.array(z.unknown()).transform((flakes) => ({ flakes })),
]);

/**
 * The registry's entries, each still to be checked by its reader, or why the document is
 * not a registry (naming `origin`).
 */
export function flakeRegistryEntries(
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
