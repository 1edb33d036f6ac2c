export { ClhClient } from './clh.client';
export type { CallOptions, ClhClientOptions } from './clh.client';
export { API_ROOT, CLH_ENDPOINTS, endpointPath } from './endpoints';
export type { ClhEndpoint, EndpointSpec } from './endpoints';
export { ClhError } from './errors';
export type { ClhErrorDetails, ClhErrorKind, ClhOperation } from './errors';
export { connectVsock } from './vsock';
export type { VsockConnectOptions } from './vsock';
export { VM_STATES } from './types';
export type {
  ConsoleConfig,
  ConsoleMode,
  CoreSchedulingMode,
  CpuAffinity,
  CpuFeatures,
  CpusConfig,
  CpuTopology,
  DebugConsoleConfig,
  DeviceNode,
  DiskConfig,
  FsConfig,
  ImageType,
  LockGranularity,
  MemoryConfig,
  MemoryRestoreMode,
  MemoryZoneConfig,
  PayloadConfig,
  PciDeviceInfo,
  RateLimiterConfig,
  RestoreConfig,
  RngConfig,
  SerialConfig,
  TokenBucket,
  VirtQueueAffinity,
  VmConfig,
  VmInfo,
  VmMemoryZoneUpdateData,
  VmmPingResponse,
  VmResize,
  VmSnapshotConfig,
  VmState,
  VsockConfig,
} from './types';
