// What `seed up` prints after its steps: the objects, the generations and the shoot.
import { formatInstances, short } from '../reports';
import { formatTable } from '../table';
import type { ObjectSummary } from './kube-objects';
import type { PushReport, UpReport } from './up';

function formatObjects(objects: readonly ObjectSummary[]): string {
  return formatTable(
    ['KIND', 'NAME', 'SPEC', 'DETAIL'],
    objects.map((o) => [o.kind, o.name, o.spec, o.detail]),
  );
}

export function formatPushReport(flake: string, namespace: string, push: PushReport): string {
  return [
    '',
    `flake ${flake}`,
    `commit ${short(push.commit)} → generation ${push.generation} in namespace ${namespace}`,
    '',
    formatInstances(push.instances),
    '(no kubelet runs locally: the objects are stored and validated, pods never start)',
    '',
    formatObjects(push.objects),
    '',
  ].join('\n');
}

export function formatChangeReport(first: PushReport, change: UpReport['change']): string {
  return [
    '',
    `generation ${first.generation} → ${change.generation}`,
    `Deployments whose spec changed: ${change.changed.join(', ')}`,
    `unchanged (relabelled with the new generation only): ${change.unchanged.join(', ') || '-'}`,
    '',
    formatObjects(change.objects.filter((o) => o.kind === 'Deployment')),
    '',
  ].join('\n');
}

export function formatShootReport(shoot: UpReport['shoot'], hostFile: string): string {
  const stdout = shoot.encoding === 'base64' ? '(binary output)' : shoot.stdout.trimEnd();
  return [
    '',
    `shoot of ${shoot.caller}: exit ${shoot.exitCode} in ${shoot.durationMs} ms`,
    ...stdout.split('\n').map((line) => `  | ${line}`),
    `on the host, ${hostFile}: ${shoot.fileOnHost.trim()}`,
    '',
  ].join('\n');
}
