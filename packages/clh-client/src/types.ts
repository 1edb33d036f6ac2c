// Request and response bodies of the Cloud Hypervisor REST API (OpenAPI 3.0.1, API
// 0.3.0), written from the spec's `components.schemas`: each interface carries the name of
// its schema, the spec's snake_case field names, and marks a field required exactly when
// the schema does (test/spec-conformance.test.ts holds the two together). Integers are
// `number`: sizes in bytes stay far below 2^53. Parts Seed's microVMs do not use (net,
// VFIO and vDPA devices, pmem, balloon, NUMA, TPM, platform, PCI segments, rate-limit
// groups, landlock rules) are left out of VmConfig; CH may still return them in VmInfo.

/** `VmmPingResponse`: what `GET /vmm.ping` answers. */
export interface VmmPingResponse {
  version: string;
  build_version?: string;
  pid?: number;
  /** Compile-time features of the VMM binary, e.g. `"kvm"`, `"guest_debug"`. */
  features?: string[];
}

/** `VmState`. */
export type VmState = 'Created' | 'Running' | 'Shutdown' | 'Paused' | 'BreakPoint';

export const VM_STATES: readonly VmState[] = [
  'Created',
  'Running',
  'Shutdown',
  'Paused',
  'BreakPoint',
];

/** `DeviceNode`: one entry of CH's device tree. */
export interface DeviceNode {
  id?: string;
  /** Rust enums with data, which the spec leaves as bare objects. */
  resources?: Record<string, unknown>[];
  children?: string[];
  pci_bdf?: string;
}

/** `VmInfo`: what `GET /vm.info` answers. */
export interface VmInfo {
  config: VmConfig;
  state: VmState;
  memory_actual_size?: number;
  device_tree?: Record<string, DeviceNode>;
}

/** `PciDeviceInfo`: where a hot-added device landed. */
export interface PciDeviceInfo {
  id: string;
  /** PCI address, `segment:bus:device.function`, e.g. `0000:00:05.0`. */
  bdf: string;
}

/** `PayloadConfig`: what the guest boots. A microVM boots `kernel` with `initramfs`. */
export interface PayloadConfig {
  firmware?: string;
  kernel?: string;
  cmdline?: string;
  initramfs?: string;
  igvm?: string;
  host_data?: string;
}

/** `CpuTopology`. */
export interface CpuTopology {
  threads_per_core?: number;
  cores_per_die?: number;
  dies_per_package?: number;
  packages?: number;
}

/** `CpuAffinity`: pins one vCPU to host CPUs. */
export interface CpuAffinity {
  vcpu: number;
  host_cpus: number[];
}

/** `CpuFeatures`. */
export interface CpuFeatures {
  amx?: boolean;
}

/** `CoreSchedulingMode`. */
export type CoreSchedulingMode = 'Vm' | 'Vcpu' | 'Off';

/** `CpusConfig`. */
export interface CpusConfig {
  boot_vcpus: number;
  max_vcpus: number;
  topology?: CpuTopology;
  kvm_hyperv?: boolean;
  max_phys_bits?: number;
  nested?: boolean;
  affinity?: CpuAffinity[];
  features?: CpuFeatures;
  core_scheduling?: CoreSchedulingMode;
}

/**
 * `MemoryConfig`. Memory backed by a file (so another process, e.g. virtiofsd, can map
 * it, or a snapshot can share it) is described by `zones` with `file` and `shared: true`,
 * with `size: 0` here: CH has no `file` field on the global memory.
 */
export interface MemoryConfig {
  /** Bytes; 0 when all memory comes from `zones`. */
  size: number;
  hotplug_size?: number;
  hotplugged_size?: number;
  mergeable?: boolean;
  /** `"Acpi"` (CH's default) or `"VirtioMem"`; the spec types it as a plain string. */
  hotplug_method?: string;
  /** MAP_SHARED guest memory: required by vhost-user devices such as virtio-fs. */
  shared?: boolean;
  hugepages?: boolean;
  hugepage_size?: number;
  prefault?: boolean;
  reserve?: boolean;
  thp?: boolean;
  zones?: MemoryZoneConfig[];
}

/** `MemoryZoneConfig`: one region of guest memory, optionally backed by `file`. */
export interface MemoryZoneConfig {
  id: string;
  /** Bytes. */
  size: number;
  /** A file (e.g. under /dev/shm) or directory backing this zone. */
  file?: string;
  mergeable?: boolean;
  shared?: boolean;
  hugepages?: boolean;
  hugepage_size?: number;
  host_numa_node?: number;
  hotplug_size?: number;
  hotplugged_size?: number;
  prefault?: boolean;
  reserve?: boolean;
}

/** `TokenBucket`. */
export interface TokenBucket {
  size: number;
  one_time_burst?: number;
  /** Milliseconds to refill the bucket. */
  refill_time: number;
}

/** `RateLimiterConfig`. */
export interface RateLimiterConfig {
  bandwidth?: TokenBucket;
  ops?: TokenBucket;
}

/** `VirtQueueAffinity`. */
export interface VirtQueueAffinity {
  queue_index: number;
  host_cpus: number[];
}

/** `ImageType`. */
export type ImageType = 'FixedVhd' | 'Qcow2' | 'Raw' | 'Vhdx' | 'Unknown';

/** `LockGranularity`. */
export type LockGranularity = 'ByteRange' | 'Full';

/** `DiskConfig`: a virtio-blk disk. The spec requires no field, not even `path`. */
export interface DiskConfig {
  path?: string;
  readonly?: boolean;
  direct?: boolean;
  iommu?: boolean;
  num_queues?: number;
  queue_size?: number;
  vhost_user?: boolean;
  vhost_socket?: string;
  rate_limiter_config?: RateLimiterConfig;
  pci_segment?: number;
  pci_device_id?: number;
  id?: string;
  serial?: string;
  rate_limit_group?: string;
  queue_affinity?: VirtQueueAffinity[];
  backing_files?: boolean;
  sparse?: boolean;
  image_type?: ImageType;
  lock_granularity?: LockGranularity;
}

/** `RngConfig`: virtio-rng, fed from a host file such as /dev/urandom. */
export interface RngConfig {
  src: string;
  id?: string;
  pci_segment?: number;
  pci_device_id?: number;
  iommu?: boolean;
}

/**
 * `FsConfig`: a virtio-fs device served by a vhost-user daemon (virtiofsd) listening on
 * `socket`; the guest mounts it by `tag`. Needs shared guest memory.
 */
export interface FsConfig {
  tag: string;
  socket: string;
  /** The spec requires it although CH defaults it to 1. */
  num_queues: number;
  /** The spec requires it although CH defaults it to 1024. */
  queue_size: number;
  pci_segment?: number;
  pci_device_id?: number;
  id?: string;
}

/**
 * `VsockConfig`: a virtio-vsock device. CH proxies it through the Unix socket `socket`
 * (hybrid vsock): see `connectVsock`.
 */
export interface VsockConfig {
  /** The guest's context id, at least 3. */
  cid: number;
  socket: string;
  iommu?: boolean;
  pci_segment?: number;
  pci_device_id?: number;
  id?: string;
}

/** `ConsoleMode`. */
export type ConsoleMode = 'Off' | 'Pty' | 'Tty' | 'File' | 'Socket' | 'Null';

/** `ConsoleConfig`: the virtio-console. */
export interface ConsoleConfig {
  mode: ConsoleMode;
  file?: string;
  socket?: string;
  iommu?: boolean;
  id?: string;
  pci_segment?: number;
  pci_device_id?: number;
}

/** `SerialConfig`: the legacy serial port (ttyS0). */
export interface SerialConfig {
  mode: ConsoleMode;
  file?: string;
  socket?: string;
}

/** `DebugConsoleConfig`: the 0xe9 debug port. */
export interface DebugConsoleConfig {
  mode: ConsoleMode;
  file?: string;
  iobase?: number;
}

/** `VmConfig`, restricted to the parts a Seed microVM uses (see the top of this file). */
export interface VmConfig {
  payload: PayloadConfig;
  cpus?: CpusConfig;
  memory?: MemoryConfig;
  disks?: DiskConfig[];
  rng?: RngConfig;
  fs?: FsConfig[];
  serial?: SerialConfig;
  console?: ConsoleConfig;
  debug_console?: DebugConsoleConfig;
  vsock?: VsockConfig;
  iommu?: boolean;
  watchdog?: boolean;
  pvpanic?: boolean;
  landlock_enable?: boolean;
}

/** `VmResize`. */
export interface VmResize {
  desired_vcpus?: number;
  /** Bytes. */
  desired_ram?: number;
  /** Bytes. */
  desired_balloon?: number;
}

/** `VmSnapshotConfig`. The spec leaves `destination_url` optional; CH cannot do without it. */
export interface VmSnapshotConfig {
  /** A `file://` URL of an existing directory that receives the snapshot. */
  destination_url?: string;
}

/** `MemoryRestoreMode`: copy memory up front, or fault it in on demand (userfaultfd). */
export type MemoryRestoreMode = 'Copy' | 'OnDemand';

/** `VmMemoryZoneUpdateData`. */
export interface VmMemoryZoneUpdateData {
  id: string;
  host_numa_node: number;
}

/** `RestoreConfig`. */
export interface RestoreConfig {
  /** A `file://` URL of the directory a snapshot was written to. */
  source_url: string;
  /** Populate guest memory before resuming instead of on first touch. */
  prefault?: boolean;
  memory_restore_mode?: MemoryRestoreMode;
  /** Resume the VM once restored instead of leaving it paused. */
  resume?: boolean;
  zone_updates?: VmMemoryZoneUpdateData[];
}
