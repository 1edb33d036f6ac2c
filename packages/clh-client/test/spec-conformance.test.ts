// The client against Cloud Hypervisor's published OpenAPI document: the endpoints it calls,
// the bodies it sends, and its types' field names, required fields and enums.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  API_ROOT,
  CLH_ENDPOINTS,
  ClhClient,
  endpointPath,
  VM_STATES,
  type ConsoleConfig,
  type ConsoleMode,
  type CoreSchedulingMode,
  type CpuAffinity,
  type CpuFeatures,
  type CpusConfig,
  type CpuTopology,
  type DebugConsoleConfig,
  type DeviceNode,
  type DiskConfig,
  type FsConfig,
  type ImageType,
  type LockGranularity,
  type MemoryConfig,
  type MemoryRestoreMode,
  type MemoryZoneConfig,
  type PayloadConfig,
  type PciDeviceInfo,
  type RateLimiterConfig,
  type RestoreConfig,
  type RngConfig,
  type SerialConfig,
  type TokenBucket,
  type VirtQueueAffinity,
  type VmConfig,
  type VmInfo,
  type VmMemoryZoneUpdateData,
  type VmmPingResponse,
  type VmResize,
  type VmSnapshotConfig,
  type VmState,
  type VsockConfig,
} from '../src';
import { FakeCloudHypervisor } from './fake-ch';
import {
  agentVsock,
  everyClientCall,
  microVmConfig,
  sharedMemoryConfig,
  snapshotDirectory,
  storageFs,
} from './samples';
import {
  clhRequestSchemaName,
  clhResponseSchemaName,
  clhSchemaProblems,
  clhSpec,
  clhSpecOperation,
  type JsonSchema,
} from '@seed/testing';

const spec = clhSpec();

describe('the spec', () => {
  it('is Cloud Hypervisor API 0.3.0, served under the root the client uses', () => {
    expect(spec.openapi).toBe('3.0.1');
    expect(spec.info.version).toBe('0.3.0');
    expect(new URL(spec.servers[0]!.url).pathname).toBe(API_ROOT);
  });
});

describe('the endpoint table', () => {
  it.each(Object.entries(CLH_ENDPOINTS))(
    '%s: the method and body schemas the spec lists',
    (endpoint, entry) => {
      const methods = Object.keys(spec.paths[`/${endpoint}`] ?? {});
      expect(methods).toEqual([entry.method.toLowerCase()]);
      const operation = clhSpecOperation(`/${endpoint}`, entry.method)!;
      const requestSchema = 'requestSchema' in entry ? entry.requestSchema : undefined;
      const responseSchema = 'responseSchema' in entry ? entry.responseSchema : undefined;
      expect(clhRequestSchemaName(operation)).toBe(requestSchema);
      expect(clhResponseSchemaName(operation)).toBe(responseSchema);
      if (requestSchema !== undefined) expect(operation.requestBody?.required).toBe(true);
    },
  );
});

describe('every client method, recorded on the fake CH', () => {
  let directory: string;
  let fake: FakeCloudHypervisor;
  let client: ClhClient;

  beforeAll(async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'clh-spec-'));
    fake = await FakeCloudHypervisor.start(path.join(directory, 'api.sock'));
    client = new ClhClient(fake.socketPath, { timeoutMs: 2000 });
  });

  afterAll(async () => {
    await fake.close();
    await rm(directory, { recursive: true, force: true });
  });

  it('covers each public method and each endpoint of the table', () => {
    const publicMethods = Object.getOwnPropertyNames(ClhClient.prototype).filter(
      (name) => name !== 'constructor',
    );
    expect(everyClientCall.map((call) => call.method).sort()).toEqual(publicMethods.sort());
    expect([...new Set(everyClientCall.map((call) => call.endpoint))].sort()).toEqual(
      Object.keys(CLH_ENDPOINTS).sort(),
    );
  });

  it('sends each request to the path and method the spec lists, with a body valid against the schema it names', async () => {
    for (const { method, endpoint, body, call } of everyClientCall) {
      const before = fake.requests.length;
      const result = await call(client);
      const sent = fake.requests.slice(before);
      expect(sent).toHaveLength(1);
      const request = sent[0]!;

      expect({ method, url: request.url }).toEqual({ method, url: endpointPath(endpoint) });
      const operation = clhSpecOperation(request.url.slice(API_ROOT.length), request.method);
      expect({ method, listed: operation !== undefined }).toEqual({ method, listed: true });

      const requestSchema = clhRequestSchemaName(operation!);
      if (requestSchema === undefined) {
        expect(request.body.length).toBe(0);
      } else {
        const parsed = JSON.parse(request.body.toString('utf8')) as unknown;
        expect(parsed).toEqual(body);
        expect({ method, problems: clhSchemaProblems(requestSchema, parsed, 'published') }).toEqual(
          {
            method,
          },
        );
        expect({ method, problems: clhSchemaProblems(requestSchema, parsed) }).toEqual({ method });
      }

      const responseSchema = clhResponseSchemaName(operation!);
      if (responseSchema !== undefined) {
        expect(result).toBeDefined();
        expect({ method, problems: clhSchemaProblems(responseSchema, result) }).toEqual({ method });
      }
    }
  });
});

describe('realistic bodies', () => {
  const bodies: [string, string, unknown][] = [
    [
      'a microVM: kernel, initramfs, file-backed shared memory, virtio-fs, vsock',
      'VmConfig',
      microVmConfig,
    ],
    ['a microVM with anonymous shared memory', 'VmConfig', sharedMemoryConfig],
    ['a virtio-fs device', 'FsConfig', storageFs],
    ['a vsock device', 'VsockConfig', agentVsock],
    ['a snapshot', 'VmSnapshotConfig', { destination_url: snapshotDirectory }],
    ['a restore', 'RestoreConfig', { source_url: snapshotDirectory }],
    [
      'a restore with every option',
      'RestoreConfig',
      {
        source_url: snapshotDirectory,
        prefault: true,
        memory_restore_mode: 'OnDemand',
        resume: true,
        zone_updates: [{ id: 'mem0', host_numa_node: 0 }],
      } satisfies RestoreConfig,
    ],
  ];

  it.each(bodies)('%s matches %s', (_what, schema, body) => {
    expect(clhSchemaProblems(schema, body)).toBeUndefined();
  });

  it('a body the spec refuses is caught: the checks are not vacuous', () => {
    expect(clhSchemaProblems('FsConfig', { tag: 'store', socket: '/s' })).toMatch(/num_queues/);
    expect(clhSchemaProblems('VsockConfig', { cid: 2, socket: '/s' })).toMatch(/>= 3/);
    expect(clhSchemaProblems('RestoreConfig', { sourceUrl: 'file:///x' })).toMatch(/source_url/);
    expect(clhSchemaProblems('VmSnapshotConfig', { destination: 'file:///x' })).toMatch(
      /additional properties/,
    );
    expect(
      clhSchemaProblems('VmConfig', { payload: {}, fs: [{ ...storageFs, pci_device_id: 256 }] }),
    ).toMatch(/uint8/);
  });
});

// Every field each type declares, all set: tsc (`Required<T>`) makes sure none is left
// out, the closed schema that none is missing from the spec or typed differently there.
const bucket: Required<TokenBucket> = { size: 1 << 20, one_time_burst: 0, refill_time: 100 };
const rateLimiter: Required<RateLimiterConfig> = { bandwidth: bucket, ops: bucket };
const queueAffinity: Required<VirtQueueAffinity> = { queue_index: 0, host_cpus: [0, 1] };
const topology: Required<CpuTopology> = {
  threads_per_core: 1,
  cores_per_die: 2,
  dies_per_package: 1,
  packages: 1,
};
const cpuAffinity: Required<CpuAffinity> = { vcpu: 0, host_cpus: [2] };
const cpuFeatures: Required<CpuFeatures> = { amx: false };
const cpus: Required<CpusConfig> = {
  boot_vcpus: 2,
  max_vcpus: 4,
  topology,
  kvm_hyperv: false,
  max_phys_bits: 46,
  nested: false,
  affinity: [cpuAffinity],
  features: cpuFeatures,
  core_scheduling: 'Vm',
};
const zone: Required<MemoryZoneConfig> = {
  id: 'mem0',
  size: 1 << 30,
  file: '/dev/shm/zone0',
  mergeable: false,
  shared: true,
  hugepages: false,
  hugepage_size: 2 << 20,
  host_numa_node: 0,
  hotplug_size: 0,
  hotplugged_size: 0,
  prefault: false,
  reserve: true,
};
const memory: Required<MemoryConfig> = {
  size: 0,
  hotplug_size: 0,
  hotplugged_size: 0,
  mergeable: false,
  hotplug_method: 'Acpi',
  shared: true,
  hugepages: false,
  hugepage_size: 2 << 20,
  prefault: false,
  reserve: true,
  thp: true,
  zones: [zone],
};
const payload: Required<PayloadConfig> = {
  firmware: '/fw/hypervisor-fw',
  kernel: '/boot/vmlinux',
  cmdline: 'console=ttyS0',
  initramfs: '/boot/initrd',
  igvm: '/fw/guest.igvm',
  host_data: '00ff',
};
const disk: Required<DiskConfig> = {
  path: '/var/lib/seed/scratch.img',
  readonly: false,
  direct: true,
  iommu: false,
  num_queues: 1,
  queue_size: 128,
  vhost_user: false,
  vhost_socket: '/run/vhost-blk.sock',
  rate_limiter_config: rateLimiter,
  pci_segment: 0,
  pci_device_id: 3,
  id: 'disk0',
  serial: 'scratch',
  rate_limit_group: 'group0',
  queue_affinity: [queueAffinity],
  backing_files: false,
  sparse: true,
  image_type: 'Raw',
  lock_granularity: 'ByteRange',
};
const rng: Required<RngConfig> = {
  src: '/dev/urandom',
  id: 'rng0',
  pci_segment: 0,
  pci_device_id: 4,
  iommu: false,
};
const fs: Required<FsConfig> = {
  tag: 'store',
  socket: '/run/virtiofsd.sock',
  num_queues: 1,
  queue_size: 1024,
  pci_segment: 0,
  pci_device_id: 5,
  id: 'fs0',
};
const vsock: Required<VsockConfig> = {
  cid: 3,
  socket: '/run/vsock.sock',
  iommu: false,
  pci_segment: 0,
  pci_device_id: 6,
  id: 'vsock0',
};
const console_: Required<ConsoleConfig> = {
  mode: 'Socket',
  file: '/run/console.log',
  socket: '/run/console.sock',
  iommu: false,
  id: 'console0',
  pci_segment: 0,
  pci_device_id: 7,
};
const serial: Required<SerialConfig> = {
  mode: 'File',
  file: '/run/serial.log',
  socket: '/run/serial.sock',
};
const debugConsole: Required<DebugConsoleConfig> = {
  mode: 'Off',
  file: '/run/debug',
  iobase: 0xe9,
};
const vmConfig: Required<VmConfig> = {
  payload,
  cpus,
  memory,
  disks: [disk],
  rng,
  fs: [fs],
  serial,
  console: console_,
  debug_console: debugConsole,
  vsock,
  iommu: false,
  watchdog: false,
  pvpanic: false,
  landlock_enable: false,
};
const deviceNode: Required<DeviceNode> = {
  id: '_fs0',
  resources: [{ PciBar: { index: 0, base: 4096, size: 8192 } }],
  children: [],
  pci_bdf: '0000:00:05.0',
};
const vmInfo: Required<VmInfo> = {
  config: vmConfig,
  state: 'Running',
  memory_actual_size: 1 << 30,
  device_tree: { _fs0: deviceNode },
};
const ping: Required<VmmPingResponse> = {
  version: 'v53.0',
  build_version: 'v53.0-0-g1c0de5e',
  pid: 4242,
  features: ['kvm'],
};
const pciDevice: Required<PciDeviceInfo> = { id: '_fs0', bdf: '0000:00:05.0' };
const resize: Required<VmResize> = {
  desired_vcpus: 2,
  desired_ram: 2 << 30,
  desired_balloon: 0,
};
const snapshot: Required<VmSnapshotConfig> = { destination_url: 'file:///var/snap' };
const zoneUpdate: Required<VmMemoryZoneUpdateData> = { id: 'mem0', host_numa_node: 1 };
const restore: Required<RestoreConfig> = {
  source_url: 'file:///var/snap',
  prefault: true,
  memory_restore_mode: 'Copy',
  resume: false,
  zone_updates: [zoneUpdate],
};

const everyField: Record<string, unknown> = {
  TokenBucket: bucket,
  RateLimiterConfig: rateLimiter,
  VirtQueueAffinity: queueAffinity,
  CpuTopology: topology,
  CpuAffinity: cpuAffinity,
  CpuFeatures: cpuFeatures,
  CpusConfig: cpus,
  MemoryZoneConfig: zone,
  MemoryConfig: memory,
  PayloadConfig: payload,
  DiskConfig: disk,
  RngConfig: rng,
  FsConfig: fs,
  VsockConfig: vsock,
  ConsoleConfig: console_,
  SerialConfig: serial,
  DebugConsoleConfig: debugConsole,
  VmConfig: vmConfig,
  DeviceNode: deviceNode,
  VmInfo: vmInfo,
  VmmPingResponse: ping,
  PciDeviceInfo: pciDevice,
  VmResize: resize,
  VmSnapshotConfig: snapshot,
  VmMemoryZoneUpdateData: zoneUpdate,
  RestoreConfig: restore,
};

/** The fields of T that are not optional. */
type RequiredKeys<T> = {
  [K in keyof T]-?: Partial<Pick<T, K>> extends Pick<T, K> ? never : K;
}[keyof T];

/** `keys`, which tsc checks name every required field of T and nothing else. */
function requiredFieldsOf<T>() {
  return <const K extends readonly RequiredKeys<T>[]>(
    keys: K & ([RequiredKeys<T>] extends [K[number]] ? unknown : never),
  ): string[] => [...keys].map(String).sort();
}

const requiredFields: Record<string, string[]> = {
  TokenBucket: requiredFieldsOf<TokenBucket>()(['size', 'refill_time']),
  RateLimiterConfig: requiredFieldsOf<RateLimiterConfig>()([]),
  VirtQueueAffinity: requiredFieldsOf<VirtQueueAffinity>()(['queue_index', 'host_cpus']),
  CpuTopology: requiredFieldsOf<CpuTopology>()([]),
  CpuAffinity: requiredFieldsOf<CpuAffinity>()(['vcpu', 'host_cpus']),
  CpuFeatures: requiredFieldsOf<CpuFeatures>()([]),
  CpusConfig: requiredFieldsOf<CpusConfig>()(['boot_vcpus', 'max_vcpus']),
  MemoryZoneConfig: requiredFieldsOf<MemoryZoneConfig>()(['id', 'size']),
  MemoryConfig: requiredFieldsOf<MemoryConfig>()(['size']),
  PayloadConfig: requiredFieldsOf<PayloadConfig>()([]),
  DiskConfig: requiredFieldsOf<DiskConfig>()([]),
  RngConfig: requiredFieldsOf<RngConfig>()(['src']),
  FsConfig: requiredFieldsOf<FsConfig>()(['tag', 'socket', 'num_queues', 'queue_size']),
  VsockConfig: requiredFieldsOf<VsockConfig>()(['cid', 'socket']),
  ConsoleConfig: requiredFieldsOf<ConsoleConfig>()(['mode']),
  SerialConfig: requiredFieldsOf<SerialConfig>()(['mode']),
  DebugConsoleConfig: requiredFieldsOf<DebugConsoleConfig>()(['mode']),
  VmConfig: requiredFieldsOf<VmConfig>()(['payload']),
  DeviceNode: requiredFieldsOf<DeviceNode>()([]),
  VmInfo: requiredFieldsOf<VmInfo>()(['config', 'state']),
  VmmPingResponse: requiredFieldsOf<VmmPingResponse>()(['version']),
  PciDeviceInfo: requiredFieldsOf<PciDeviceInfo>()(['id', 'bdf']),
  VmResize: requiredFieldsOf<VmResize>()([]),
  VmSnapshotConfig: requiredFieldsOf<VmSnapshotConfig>()([]),
  VmMemoryZoneUpdateData: requiredFieldsOf<VmMemoryZoneUpdateData>()(['id', 'host_numa_node']),
  RestoreConfig: requiredFieldsOf<RestoreConfig>()(['source_url']),
};

// Each member of each string union once: tsc refuses a missing or an extra one.
const enums: Record<string, string[]> = {
  VmState: Object.keys({
    Created: true,
    Running: true,
    Shutdown: true,
    Paused: true,
    BreakPoint: true,
  } satisfies Record<VmState, true>),
  ConsoleMode: Object.keys({
    Off: true,
    Pty: true,
    Tty: true,
    File: true,
    Socket: true,
    Null: true,
  } satisfies Record<ConsoleMode, true>),
  CoreSchedulingMode: Object.keys({ Vm: true, Vcpu: true, Off: true } satisfies Record<
    CoreSchedulingMode,
    true
  >),
  ImageType: Object.keys({
    FixedVhd: true,
    Qcow2: true,
    Raw: true,
    Vhdx: true,
    Unknown: true,
  } satisfies Record<ImageType, true>),
  LockGranularity: Object.keys({ ByteRange: true, Full: true } satisfies Record<
    LockGranularity,
    true
  >),
  MemoryRestoreMode: Object.keys({ Copy: true, OnDemand: true } satisfies Record<
    MemoryRestoreMode,
    true
  >),
};

describe('the types, schema by schema', () => {
  it('every typed schema has its required fields listed', () => {
    expect(Object.keys(requiredFields).sort()).toEqual(Object.keys(everyField).sort());
  });

  it.each(Object.keys(everyField))(
    '%s: every declared field is in the spec, typed alike',
    (name) => {
      expect(clhSchemaProblems(name, everyField[name])).toBeUndefined();
    },
  );

  it.each(Object.keys(requiredFields))('%s: required exactly where the spec requires', (name) => {
    const schema = spec.components.schemas[name]!;
    expect([...((schema.required as string[] | undefined) ?? [])].sort()).toEqual(
      requiredFields[name],
    );
  });

  it.each(Object.keys(enums))('%s: the same values as the spec', (name) => {
    const schema: JsonSchema = spec.components.schemas[name]!;
    expect([...(schema.enum as string[])].sort()).toEqual([...enums[name]!].sort());
  });

  it('the states the client accepts in a VmInfo are the VmState of the spec', () => {
    expect([...VM_STATES].sort()).toEqual([...enums.VmState!].sort());
  });
});
