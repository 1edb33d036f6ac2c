// What `seed up` prints after its steps: the objects, the generations and the shoot.
import { formatInstances, formatTable, short } from '@seed/platform-client';
import type { SeedFlakeResource } from '@seed/contracts';
import type { ObjectSummary } from './kube-objects';
import type { ReceivedStatus } from './loopback-forge';
import type { PushReport, ServedReport, UpReport } from './up';

function formatObjects(objects: readonly ObjectSummary[]): string {
  return formatTable(
    ['KIND', 'NAME', 'SPEC', 'DETAIL'],
    objects.map((o) => [o.kind, o.name, o.spec, o.detail]),
  );
}

/** A server's answer, indented under its heading. */
function quoted(text: string): string[] {
  return text
    .trimEnd()
    .split('\n')
    .map((line) => `  | ${line}`);
}

export function formatPushReport(
  flake: string,
  namespace: string,
  push: PushReport,
  served: ServedReport,
): string {
  return [
    '',
    `flake ${flake}`,
    `commit ${short(push.commit)} → generation ${push.generation} in namespace ${namespace}`,
    '',
    formatInstances(push.instances),
    '',
    formatObjects(push.objects),
    '',
    'web, over its Service (GET /):',
    ...quoted(served.web),
    'api, over its Service (GET /):',
    ...quoted(served.api),
    `dns, over its Service: UDP ${served.dns.udp}; TCP ${served.dns.tcp}`,
    '',
  ].join('\n');
}

/** The commit statuses a forge received, in the order it received them. */
export function formatForgeStatuses(statuses: readonly ReceivedStatus[]): string {
  return [
    '',
    "commit statuses the builder sent (GitHub's API on loopback, each with the flake's token):",
    formatTable(
      ['COMMIT', 'STATE', 'TOKEN', 'DESCRIPTION'],
      statuses.map((status) => [
        short(status.commit),
        status.state,
        status.authorized ? 'ok' : 'WRONG',
        status.description,
      ]),
    ),
    '',
  ].join('\n');
}

/** SeedFlakes as `kubectl get seedflakes` prints them (its printer columns). */
export function formatSeedFlakes(flakes: readonly SeedFlakeResource[]): string {
  const ready = (flake: SeedFlakeResource) =>
    flake.status?.conditions?.find((condition) => condition.type === 'Ready');
  return [
    '',
    formatTable(
      ['NAME', 'READY', 'STATUS', 'NAMESPACE', 'APPLIED', 'GENERATION', 'SUSPENDED'],
      flakes.map((flake) => [
        flake.metadata.name,
        ready(flake)?.status ?? '',
        ready(flake)?.reason ?? '',
        flake.status?.namespace ?? '',
        short(flake.status?.lastAppliedRevision ?? ''),
        flake.status?.generation ?? '',
        String(flake.spec.suspend),
      ]),
    ),
    '',
  ].join('\n');
}

export function formatChangeReport(first: PushReport, change: UpReport['change']): string {
  return [
    '',
    `generation ${first.generation} → ${change.generation}`,
    `Deployments whose spec changed: ${change.changed.join(', ')}`,
    `Deployments whose spec is unchanged: ${change.unchanged.join(', ') || '-'}`,
    '',
    formatObjects(change.objects.filter((o) => o.kind === 'Deployment')),
    '',
    `${change.instance} rolled out: pod ${change.podsBefore.join(', ') || '-'} → ${change.podsAfter.join(', ')}`,
    ...quoted(change.servedAfter),
    '',
  ].join('\n');
}

export function formatSecretsReport(secrets: UpReport['secrets']): string {
  const { ms } = secrets;
  return [
    '',
    `${secrets.instance}'s age recipient (seed keys): ${secrets.recipient}`,
    `  its TPM: swtpm on node ${secrets.node}, control socket ${secrets.ctrlSocket}`,
    `secret ${secrets.secret}: sops --encrypt --age <recipient> on the host (${secrets.encryptedBytes} bytes, ${ms.encrypt} ms)`,
    `decrypted in a QEMU VM with ${secrets.instance}'s swtpm by seed-secrets install: /run/secrets/${secrets.secret}, sha256 ${secrets.sha256.slice(0, 16)}… as encrypted`,
    `  ${ms.prepare + ms.vm} ms (guest root ${ms.prepare} ms, boot and decrypt ${ms.vm} ms)`,
    '',
  ].join('\n');
}

export function formatShootReport(shoot: UpReport['shoot']): string {
  return [
    '',
    `seed-shoot in pod ${shoot.callerPod} (${shoot.caller}): exit ${shoot.exitCode} in ${shoot.durationMs} ms`,
    ...quoted(shoot.stdout),
    `in ${shoot.caller}'s volume on the node: ${shoot.fileOnHost.trim()}`,
    `${shoot.caller} serves it back:`,
    ...quoted(shoot.servedBack),
    '',
  ].join('\n');
}

export function formatLogs(logs: UpReport['logs']): string {
  return [
    '',
    ...Object.entries(logs).flatMap(([instance, lines]) => [
      `${instance}'s log (last lines):`,
      ...quoted(lines.join('\n') || '(empty)'),
    ]),
    '',
  ].join('\n');
}

export function formatDashboard(answers: UpReport['dashboard']): string {
  const panels = new Map<string, number[]>();
  for (const { panel, series } of answers)
    panels.set(panel, [...(panels.get(panel) ?? []), series]);
  return [
    '',
    `the Grafana dashboard, asked of Prometheus: ${panels.size} panels, ${answers.length} queries, each with data`,
    ...[...panels].map(([panel, series]) => `    ${panel}: ${series.join(' + ')} series`),
    '',
  ].join('\n');
}
