// SEED_HYPERVISOR picks the pool's driver: checked at start-up, QEMU unless told otherwise.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { ConfigError } from '@seed/service-kit';
import { loadShootPoolConfig } from '../src/config';
import { selectHypervisor } from '../src/vm/select-hypervisor';
import { silentLog } from '../src/vm/vm-log';
import { DEFAULT_VM_UIDS } from '../src/vm/vm-uids';

const STATUS_TOKEN_FILE = path.join(mkdtempSync(path.join(tmpdir(), 'shoot-config-')), 'token');
writeFileSync(STATUS_TOKEN_FILE, 'status-token-'.padEnd(32, '0'));

/**
 * A pool serving Kubernetes callers needs its node, and its status a token; nothing here
 * talks to the API server.
 */
/** Debian's own, which any machine that ran scripts/setup has. */
const DEBIAN_QEMU = '/usr/bin/qemu-system-x86_64';
const NODE = { SEED_NODE_NAME: 'node-1', SEED_SHOOT_STATUS_TOKEN_FILE: STATUS_TOKEN_FILE };

function problems(env: Record<string, string>): string[] {
  try {
    loadShootPoolConfig({ ...NODE, ...env });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('SEED_HYPERVISOR', () => {
  it('is QEMU by default, with its accelerator probed', () => {
    const config = loadShootPoolConfig(NODE);
    expect(config.hypervisor).toEqual({ kind: 'qemu', accel: 'auto', vmUids: DEFAULT_VM_UIDS });
    expect(loadShootPoolConfig({ ...NODE, SEED_SHOOT_ACCEL: 'tcg' }).hypervisor).toEqual({
      kind: 'qemu',
      accel: 'tcg',
      vmUids: DEFAULT_VM_UIDS,
    });
  });

  it("takes QEMU's VM uids as a range, refusing system uids", () => {
    expect(
      loadShootPoolConfig({ ...NODE, SEED_SHOOT_VM_UIDS: '3000000000-3000000099' }).hypervisor,
    ).toMatchObject({ vmUids: { first: 3_000_000_000, count: 100 } });
    expect(problems({ SEED_SHOOT_VM_UIDS: '0-99' })).toEqual([
      expect.stringMatching(/^SEED_SHOOT_VM_UIDS="0-99": expected FIRST-LAST/),
    ]);
  });

  it("runs scripts/qemu's QEMU unless SEED_QEMU_BINARY names another", () => {
    expect(loadShootPoolConfig(NODE).hypervisor).toMatchObject({ kind: 'qemu', binary: undefined });
    expect(
      loadShootPoolConfig({ ...NODE, SEED_QEMU_BINARY: DEBIAN_QEMU }).hypervisor,
    ).toMatchObject({ kind: 'qemu', binary: DEBIAN_QEMU });
    expect(problems({ SEED_QEMU_BINARY: 'qemu-system-x86_64' })).toEqual([
      expect.stringMatching(/^SEED_QEMU_BINARY="qemu-system-x86_64": /),
    ]);
  });

  it('selects Cloud Hypervisor with its binaries', () => {
    const config = loadShootPoolConfig({
      ...NODE,
      SEED_HYPERVISOR: 'cloud-hypervisor',
      SEED_CLOUD_HYPERVISOR_BINARY: '/opt/ch/bin/cloud-hypervisor',
    });
    expect(config.hypervisor).toEqual({
      kind: 'cloud-hypervisor',
      binary: '/opt/ch/bin/cloud-hypervisor',
      virtiofsdBinary: '/usr/libexec/virtiofsd',
      vmUids: DEFAULT_VM_UIDS,
    });
  });

  it('refuses anything else, naming the variable, its value and the choices', () => {
    expect(problems({ SEED_HYPERVISOR: 'clh' })).toEqual([
      'SEED_HYPERVISOR="clh": expected qemu or cloud-hypervisor',
    ]);
  });

  it('refuses a QEMU-only accelerator for Cloud Hypervisor, with every other problem', () => {
    expect(
      problems({
        SEED_HYPERVISOR: 'cloud-hypervisor',
        SEED_SHOOT_ACCEL: 'tcg',
      }),
    ).toEqual([
      'SEED_SHOOT_ACCEL="tcg": Cloud Hypervisor (SEED_HYPERVISOR=cloud-hypervisor) runs only under KVM: leave it unset, or set SEED_HYPERVISOR=qemu',
    ]);
    expect(
      loadShootPoolConfig({
        ...NODE,
        SEED_HYPERVISOR: 'cloud-hypervisor',
        SEED_SHOOT_ACCEL: 'kvm',
      }).hypervisor.kind,
    ).toBe('cloud-hypervisor');
  });

  it('builds the driver it names, without starting anything', async () => {
    const runRoot = '/run/seed/shoot-pool-test';
    const qemu = { kind: 'qemu', accel: 'tcg', vmUids: DEFAULT_VM_UIDS } as const;
    expect(
      (await selectHypervisor({ ...qemu, binary: DEBIAN_QEMU }, runRoot, silentLog)).kind,
    ).toBe('qemu');
    await expect(
      selectHypervisor({ ...qemu, binary: '/nonexistent/qemu' }, runRoot, silentLog),
    ).rejects.toThrow('QEMU /nonexistent/qemu is missing or not executable');
    const clh = await selectHypervisor(
      {
        kind: 'cloud-hypervisor',
        binary: 'cloud-hypervisor',
        virtiofsdBinary: 'virtiofsd',
        vmUids: DEFAULT_VM_UIDS,
      },
      runRoot,
      silentLog,
    );
    expect(clh.kind).toBe('cloud-hypervisor');
    expect(clh.runRoot).toBe(runRoot);
  });
});

describe('SEED_SHOOT_STATUS_TOKEN_FILE', () => {
  it('is required, and must name a file holding a token', () => {
    expect(problems({ SEED_SHOOT_STATUS_TOKEN_FILE: '/nonexistent/token' })).toEqual([
      expect.stringMatching(/^SEED_SHOOT_STATUS_TOKEN_FILE="\/nonexistent\/token": ENOENT/),
    ]);
    const empty = path.join(path.dirname(STATUS_TOKEN_FILE), 'empty');
    writeFileSync(empty, '\n');
    expect(problems({ SEED_SHOOT_STATUS_TOKEN_FILE: empty })).toEqual([
      `SEED_SHOOT_STATUS_TOKEN_FILE=${JSON.stringify(empty)}: ${empty} is empty: it must hold the API token`,
    ]);
    const short = path.join(path.dirname(STATUS_TOKEN_FILE), 'short');
    writeFileSync(short, 'REPLACE-ME');
    expect(problems({ SEED_SHOOT_STATUS_TOKEN_FILE: short })).toEqual([
      `SEED_SHOOT_STATUS_TOKEN_FILE=${JSON.stringify(short)}: ${short} holds 10 characters, fewer than 32: make a token with \`openssl rand -hex 32\``,
    ]);
  });
});

describe('SEED_TPM_ROOT', () => {
  it('is unset by default: the node serves no TPMs', () => {
    expect(loadShootPoolConfig(NODE).tpm).toBeUndefined();
  });

  it('runs the TPM agent for this node, with its defaults', () => {
    expect(loadShootPoolConfig({ ...NODE, SEED_TPM_ROOT: '/var/lib/seed/tpm/' }).tpm).toEqual({
      root: '/var/lib/seed/tpm',
      swtpm: 'swtpm',
      graceMs: 7 * 24 * 3600 * 1000,
      syncMs: 5000,
      identityProgram: undefined,
      nodeName: 'node-1',
      kubeconfig: undefined,
    });
  });

  it('refuses a relative root, a bad interval, and a local caller map', () => {
    expect(problems({ SEED_TPM_ROOT: 'tpm', SEED_TPM_SYNC_SECONDS: '0' })).toEqual([
      expect.stringMatching(/^SEED_TPM_ROOT="tpm": /),
      expect.stringMatching(/^SEED_TPM_SYNC_SECONDS="0": /),
    ]);
    expect(
      problems({
        SEED_TPM_ROOT: '/var/lib/seed/tpm',
        SEED_SHOOT_LOCAL_CALLER: JSON.stringify({
          '127.0.0.1': { namespace: 's-x', store: '/tmp' },
        }),
      }),
    ).toEqual([
      expect.stringMatching(/^SEED_TPM_ROOT: the TPM agent takes its requests from Kubernetes/),
    ]);
  });
});
