// How `seed status` prints removed flakes: the claims Seed kept and the command that
// deletes them (the reconciler's side is apps/reconciler/test/seed-flake-status.test.ts).
import { describe, expect, it } from '@jest/globals';
import type { FlakeStatus__Output } from '@seed/contracts';
import { formatFlakeStatus, formatStatusList } from '@seed/platform-client';

const served: FlakeStatus__Output = {
  flakeUri: 'github:acme/web',
  namespace: 's-web',
  generation: 'g1',
  revision: 'a'.repeat(40),
  instances: [{ name: 'web', rollout: 'available', readyReplicas: 1, message: '', reason: '' }],
  lastError: '',
  appliedAt: '2026-12-03T06:00:00Z',
  removedAt: '',
  keptClaims: [],
  keptGenerations: [],
};
const removed: FlakeStatus__Output = {
  ...served,
  flakeUri: 'github:acme/db',
  namespace: 's-db',
  generation: '',
  revision: '',
  instances: [],
  appliedAt: '',
  removedAt: '2026-12-03T06:30:00Z',
  keptClaims: ['seed-db-data', 'seed-db-logs'],
};

describe('seed status of removed flakes', () => {
  it('lists them after the served ones, with their claims and the command that deletes them', () => {
    expect(formatStatusList([served, removed]).split('\n').slice(2)).toEqual([
      '',
      'removed flakes (their instances are gone; Seed keeps their volume claims):',
      '  github:acme/db (namespace s-db), removed 2026-12-03T06:30:00Z',
      '    claims: seed-db-data, seed-db-logs; to delete them: kubectl -n s-db delete pvc seed-db-data seed-db-logs',
      '',
    ]);
  });

  it('says so of one flake asked for by name', () => {
    expect(formatFlakeStatus({ ...removed, keptClaims: [] })).toContain(
      'no claims left: the namespace is being deleted',
    );
  });
});
