// The Cloud Hypervisor driver cannot run here (no CH binary, no usable KVM); what it would
// send CH is pure data and checked here: its values, and every body against the schema CH's
// OpenAPI document names for the endpoint it goes to (closed: a field the spec does not
// have fails). @seed/clh-client's own tests hold the endpoints and the client's types to
// the same document.
import { describe, expect, it } from '@jest/globals';
import { clhSchemaProblems } from '@seed/testing';
import {
  CLH_CONSOLE_LOG,
  CLH_VSOCK_SOCKET,
  clhGuestCmdline,
  clhRestoreConfig,
  clhShareConfig,
  clhSnapshotConfig,
  clhTemplateConfig,
  cloudHypervisorArgs,
  virtiofsdArgs,
} from '../src/vm/clh-config';

const machine = {
  image: {
    kernel: '/guest/vmlinux',
    uniprocessorKernel: '/guest/vmlinux-up',
    initramfs: '/guest/initramfs.cpio.gz',
  },
  memoryMiB: 512,
  vcpus: 2,
  cmdline: clhGuestCmdline(),
};

describe('Cloud Hypervisor config', () => {
  it('creates a template with shared memory, vsock, a serial file and no share device', () => {
    expect(clhTemplateConfig(machine)).toEqual({
      payload: {
        kernel: '/guest/vmlinux',
        initramfs: '/guest/initramfs.cpio.gz',
        cmdline: 'console=ttyS0 panic=-1 reboot=t quiet',
      },
      cpus: { boot_vcpus: 2, max_vcpus: 2 },
      memory: { size: 512 * 1024 * 1024, shared: true },
      serial: { mode: 'File', file: 'console.log' },
      console: { mode: 'Off' },
      vsock: { cid: 3, socket: 'vsock.sock' },
      rng: { src: '/dev/urandom' },
      watchdog: false,
    });
  });

  it('boots the uniprocessor kernel in a VM of one vCPU', () => {
    expect(clhTemplateConfig({ ...machine, vcpus: 1 }).payload?.kernel).toBe('/guest/vmlinux-up');
  });

  it('keeps the paths CH reopens on restore relative to each VM run directory', () => {
    const config = clhTemplateConfig(machine);
    expect(config.vsock?.socket).toBe(CLH_VSOCK_SOCKET);
    expect(config.serial?.file).toBe(CLH_CONSOLE_LOG);
    expect(CLH_VSOCK_SOCKET.startsWith('/')).toBe(false);
    expect(config.fs).toBeUndefined(); // CH cannot snapshot vhost-user devices
    expect(config).not.toHaveProperty('net');
  });

  it('hot-plugs a clone share and restores lazily', () => {
    expect(clhShareConfig('shoot', '/run/vms/c/virtiofs.sock')).toEqual({
      tag: 'shoot',
      socket: '/run/vms/c/virtiofs.sock',
      num_queues: 1,
      queue_size: 1024,
      id: 'share0',
    });
    expect(clhRestoreConfig('/run/snapshots/s', undefined)).toEqual({
      source_url: 'file:///run/snapshots/s',
      prefault: false,
    });
    expect(clhRestoreConfig('/run/snapshots/s', 'OnDemand').memory_restore_mode).toBe('OnDemand');
  });

  it('starts CH with its API socket and seccomp on, and virtiofsd without a sandbox', () => {
    expect(cloudHypervisorArgs('/run/vms/c/api.sock')).toEqual([
      '--api-socket',
      'path=/run/vms/c/api.sock',
      '--seccomp',
      'true',
    ]);
    expect(virtiofsdArgs('/run/vms/c/virtiofs.sock', '/run/vms/c/export')).toEqual([
      '--socket-path=/run/vms/c/virtiofs.sock',
      '--shared-dir=/run/vms/c/export',
      '--cache=never',
      '--announce-submounts',
      '--sandbox=none',
    ]);
  });
});

describe('Cloud Hypervisor config against the API spec', () => {
  it.each([
    ['vm.create', 'VmConfig', clhTemplateConfig(machine)],
    ['vm.snapshot', 'VmSnapshotConfig', clhSnapshotConfig('/run/seed/shoot-pool/snapshots/s')],
    [
      'vm.restore',
      'RestoreConfig',
      clhRestoreConfig('/run/seed/shoot-pool/snapshots/s', undefined),
    ],
    ['vm.restore (on demand)', 'RestoreConfig', clhRestoreConfig('/run/snapshots/s', 'OnDemand')],
    ['vm.add-fs', 'FsConfig', clhShareConfig('shoot', '/run/seed/shoot-pool/vms/c/virtiofs.sock')],
  ])('%s: the body is a valid %s', (_endpoint, schema, body) => {
    expect(clhSchemaProblems(schema, body)).toBeUndefined();
  });

  it('fits the smallest and the largest machine the pool may be configured with', () => {
    for (const [memoryMiB, vcpus] of [
      [64, 1],
      [65536, 64],
    ] as const) {
      const config = clhTemplateConfig({ ...machine, memoryMiB, vcpus });
      expect(clhSchemaProblems('VmConfig', config)).toBeUndefined();
    }
  });
});
