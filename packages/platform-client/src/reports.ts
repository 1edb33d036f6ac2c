import type { BuildRecord, BuildSummary, FlakeStatus__Output } from '@seed/contracts';
import { formatFields, formatTable } from './table';

/** A commit as the reports show it: its first 12 hex digits. */
export const short = (commit: string) => commit.slice(0, 12) || '-';

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Phase timings in the order they run, e.g. `evaluate 1.2 s, build 0.4 s`. */
export function formatPhases(phases: Record<string, number>): string {
  return (
    Object.entries(phases)
      .map(([phase, ms]) => `${phase} ${seconds(ms)}`)
      .join(', ') || '-'
  );
}

/** `seed status <flake>`: the flake's generation, then one row per instance. */
export function formatFlakeStatus(status: FlakeStatus__Output): string {
  if (status.removedAt) return `${formatRemoved([status])}`;
  const summary = formatFields([
    ['flake', status.flakeUri],
    ['namespace', status.namespace],
    ['generation', status.generation || '-'],
    ['revision', short(status.revision)],
    ['applied', status.appliedAt || '-'],
    ['last error', status.lastError || '-'],
  ]);
  return `${summary}\n\n${formatInstances(status.instances)}\n`;
}

/** One row per instance, as the reconciler reports it: rollout, ready pods, why not available. */
export function formatInstances(
  instances: readonly {
    name: string;
    rollout: string;
    readyReplicas: number;
    reason?: string;
    message?: string;
  }[],
): string {
  return formatTable(
    ['INSTANCE', 'ROLLOUT', 'READY', 'REASON', 'MESSAGE'],
    instances.map((instance) => [
      instance.name,
      instance.rollout,
      String(instance.readyReplicas),
      instance.reason || '-',
      instance.message || '-',
    ]),
  );
}

/** `seed status`: one row per flake. */
export function formatStatusList(statuses: readonly FlakeStatus__Output[]): string {
  if (statuses.length === 0) return 'no flake has a generation yet\n';
  const removed = statuses.filter((status) => status.removedAt);
  const served = statuses.filter((status) => !status.removedAt);
  const rows = served.map((status) => {
    const available = status.instances.filter((i) => i.rollout === 'available').length;
    const failed = status.instances
      .filter((i) => i.rollout === 'failed')
      .map((i) => (i.reason ? `${i.name} (${i.reason})` : i.name));
    return [
      status.flakeUri,
      status.namespace,
      status.generation || '-',
      `${available}/${status.instances.length}`,
      failed.join(', ') || '-',
      status.lastError ? status.lastError.split('\n')[0]! : '-',
    ];
  });
  const header = ['FLAKE', 'NAMESPACE', 'GENERATION', 'AVAILABLE', 'FAILED', 'LAST ERROR'];
  const table = served.length > 0 ? `${formatTable(header, rows)}\n` : '';
  return `${table}${removed.length > 0 ? `${table ? '\n' : ''}${formatRemoved(removed)}` : ''}`;
}

/**
 * Removed flakes and the claims they left: Seed never deletes a volume, so each comes
 * with the command that does (the namespace goes with its last claim).
 */
function formatRemoved(statuses: readonly FlakeStatus__Output[]): string {
  const lines = ['removed flakes (their instances are gone; Seed keeps their volume claims):'];
  for (const status of statuses) {
    lines.push(`  ${status.flakeUri} (namespace ${status.namespace}), removed ${status.removedAt}`);
    lines.push(
      status.keptClaims.length > 0
        ? `    claims: ${status.keptClaims.join(', ')}; to delete them: kubectl -n ${status.namespace} delete pvc ${status.keptClaims.join(' ')}`
        : '    no claims left: the namespace is being deleted',
    );
  }
  return `${lines.join('\n')}\n`;
}

/** `seed builds`: one row per build, newest first. */
export function formatBuildList(builds: readonly BuildSummary[]): string {
  if (builds.length === 0) return 'no builds yet\n';
  const rows = builds.map((build) => [
    build.id,
    build.state,
    short(build.commit),
    build.generation ?? '-',
    build.receivedAt,
    build.flake,
  ]);
  return `${formatTable(['BUILD', 'STATE', 'COMMIT', 'GENERATION', 'RECEIVED', 'FLAKE'], rows)}\n`;
}

/** `seed builds <id>`: the record, then its log. */
export function formatBuild(build: BuildRecord): string {
  const fields: [string, string][] = [
    ['build', build.id],
    ['flake', build.flake],
    ['commit', build.commit],
    ['ref', build.ref],
    ['state', build.state],
    ['attempts', String(build.attempts)],
    ['received', build.receivedAt],
    ['updated', build.updatedAt],
    ['phases', formatPhases(build.phases)],
    ['generation', build.generation ?? '-'],
  ];
  if (build.changed !== undefined) fields.push(['changed', build.changed ? 'yes' : 'no']);
  if (build.error) fields.push(['error', `${build.error.kind}: ${build.error.message}`]);
  const log = build.log.length ? build.log.map((line) => `  ${line}`).join('\n') : '  (empty)';
  return `${formatFields(fields)}\n\nlog:\n${log}\n`;
}
