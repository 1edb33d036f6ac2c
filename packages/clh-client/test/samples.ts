// Realistic bodies for every call the client can make: what the shoot pool sends for a
// slot. Shared by the spec-conformance and the fake-server tests.
import type { ClhClient, ClhEndpoint, FsConfig, VmConfig, VsockConfig } from '../src';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const STORE = '/nix/store/0c9mfhzxj3qbh5mdwdk4j8z1y5l8p6vq';

/**
 * A shoot microVM: kernel + initramfs, no network, memory from a shared file under
 * /dev/shm (so the snapshot's memory can be mapped by the next slot), the parent's store
 * over virtio-fs, vsock for the agent, serial to a log file.
 */
export const microVmConfig: VmConfig = {
  payload: {
    kernel: `${STORE}-linux-6.12.8/vmlinux`,
    initramfs: `${STORE}-seed-shoot-initrd/initrd`,
    cmdline: 'console=ttyS0 panic=-1 reboot=t quiet init=/init seed.slot=3',
  },
  cpus: { boot_vcpus: 2, max_vcpus: 2 },
  memory: {
    size: 0,
    shared: true,
    zones: [{ id: 'mem0', size: 1 * GiB, file: '/dev/shm/seed-slot-3.mem', shared: true }],
  },
  fs: [
    {
      tag: 'nix-store',
      socket: '/run/seed/shoot/slot-3/virtiofs-store.sock',
      num_queues: 1,
      queue_size: 1024,
      id: 'fs-store',
    },
  ],
  vsock: { cid: 3, socket: '/run/seed/shoot/slot-3/vsock.sock', id: 'vsock0' },
  rng: { src: '/dev/urandom' },
  serial: { mode: 'File', file: '/run/seed/shoot/slot-3/serial.log' },
  console: { mode: 'Off' },
  watchdog: false,
};

/** The same without memory zones: anonymous memory, shared for vhost-user. */
export const sharedMemoryConfig: VmConfig = {
  payload: microVmConfig.payload,
  cpus: { boot_vcpus: 1, max_vcpus: 1 },
  memory: { size: 512 * MiB, shared: true, prefault: false },
  console: { mode: 'Off' },
  serial: { mode: 'Null' },
};

/** A volume of the parent instance, hot-plugged into a running slot. */
export const storageFs: FsConfig = {
  // Not ASCII on purpose: Content-Length must count bytes, not characters.
  tag: 'seed-storage-données',
  socket: '/run/seed/shoot/slot-3/virtiofs-data.sock',
  num_queues: 1,
  queue_size: 1024,
  id: 'fs-data',
};

export const agentVsock: VsockConfig = {
  cid: 4,
  socket: '/run/seed/shoot/slot-4/vsock.sock',
  id: 'vsock1',
};

export const snapshotDirectory = 'file:///var/lib/seed/shoot/template-5f2a9c';

/** One call of each client method, with the body it sends (undefined: none). */
export interface ClientCall {
  method: keyof ClhClient;
  endpoint: ClhEndpoint;
  body: unknown;
  call: (client: ClhClient) => Promise<unknown>;
}

export const everyClientCall: ClientCall[] = [
  { method: 'ping', endpoint: 'vmm.ping', body: undefined, call: (c) => c.ping() },
  {
    method: 'create',
    endpoint: 'vm.create',
    body: microVmConfig,
    call: (c) => c.create(microVmConfig),
  },
  { method: 'boot', endpoint: 'vm.boot', body: undefined, call: (c) => c.boot() },
  { method: 'info', endpoint: 'vm.info', body: undefined, call: (c) => c.info() },
  { method: 'addFs', endpoint: 'vm.add-fs', body: storageFs, call: (c) => c.addFs(storageFs) },
  {
    method: 'addVsock',
    endpoint: 'vm.add-vsock',
    body: agentVsock,
    call: (c) => c.addVsock(agentVsock),
  },
  {
    method: 'resize',
    endpoint: 'vm.resize',
    body: { desired_vcpus: 2, desired_ram: 2 * GiB },
    call: (c) => c.resize({ desired_vcpus: 2, desired_ram: 2 * GiB }),
  },
  { method: 'pause', endpoint: 'vm.pause', body: undefined, call: (c) => c.pause() },
  {
    method: 'snapshot',
    endpoint: 'vm.snapshot',
    body: { destination_url: snapshotDirectory },
    call: (c) => c.snapshot({ destination_url: snapshotDirectory }),
  },
  { method: 'resume', endpoint: 'vm.resume', body: undefined, call: (c) => c.resume() },
  { method: 'shutdown', endpoint: 'vm.shutdown', body: undefined, call: (c) => c.shutdown() },
  { method: 'delete', endpoint: 'vm.delete', body: undefined, call: (c) => c.delete() },
  {
    method: 'restore',
    endpoint: 'vm.restore',
    body: { source_url: snapshotDirectory, prefault: true },
    call: (c) => c.restore({ source_url: snapshotDirectory, prefault: true }),
  },
  {
    method: 'shutdownVmm',
    endpoint: 'vmm.shutdown',
    body: undefined,
    call: (c) => c.shutdownVmm(),
  },
];
