export {
  InvalidInstance,
  VtpmStore,
  type InstanceKey,
  type VtpmStatus,
  type VtpmStoreOptions,
} from './vtpm-store';
export {
  SwtpmError,
  controlCapabilities,
  runningSwtpm,
  startSwtpm,
  stopSwtpm,
  tpmPaths,
  type TpmPaths,
} from './swtpm';
