import type { SeedMeta } from '@seed/contracts';
import type { FlakeInspection, NixError } from '@seed/nix-eval';
import { formatFields, formatTable } from '@seed/platform-client';

function describeExpose(meta: SeedMeta): string {
  const entries = Object.entries(meta.expose).map(([key, e]) => `${key}=${e.port}/${e.protocol}`);
  return entries.join(',') || '-';
}

function describeStorage(meta: SeedMeta): string {
  const entries = Object.entries(meta.storage).map(
    ([key, s]) => `${key}=${s.size}@${s.mountPoint}`,
  );
  return entries.join(',') || '-';
}

function describeConnect(meta: SeedMeta): string {
  const entries = Object.entries(meta.connect).map(
    ([key, c]) => `${key}=${c.service}${c.port === null ? '' : `:${c.port}`}`,
  );
  return entries.join(',') || '-';
}

/** The human-readable report of `seed inspect`: the flake, then one row per instance. */
export function formatInspection(inspection: FlakeInspection): string {
  const { flake, namespace, generation, seeds } = inspection;
  const summary = formatFields([
    ['flake', flake.url],
    ['revision', flake.revision ?? '-'],
    ['namespace', namespace],
    ['generation', generation],
    ['instances', String(seeds.length)],
  ]);
  const instances = formatTable(
    ['INSTANCE', 'SIZE', 'ROLLOUT', 'EXPOSE', 'STORAGE', 'CONNECT', 'SHOOTS'],
    seeds.map(({ name, meta }) => [
      name,
      `${meta.size} (${meta.resources.vcpus} vCPU, ${meta.resources.memory} MiB)`,
      meta.rollout,
      describeExpose(meta),
      describeStorage(meta),
      describeConnect(meta),
      meta.shoot.enable ? 'on' : 'off',
    ]),
  );
  const closures = formatTable(
    ['INSTANCE', 'IMAGE'],
    seeds.map(({ name, image }) => [name, image]),
  );
  return `${summary}\n\n${instances}\n\n${closures}\n`;
}

/** What a user needs from a nix failure: kind, message, and where to look. */
export function formatNixError(error: NixError): string {
  const lines = [`seed: ${error.kind} error: ${error.message}`];
  if (error.location) lines.push(`  at ${error.location}`);
  if (error.derivation) lines.push(`  derivation ${error.derivation}`);
  if (error.logTail?.length)
    lines.push('  last log lines:', ...error.logTail.map((l) => `  > ${l}`));
  if (error.retryable) lines.push('  (this may succeed if retried)');
  return lines.join('\n');
}
