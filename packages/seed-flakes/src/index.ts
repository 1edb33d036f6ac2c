export {
  SeedFlakeOperationError,
  removeSeedFlake,
  requestRebuild,
  rollBack,
  setSuspended,
} from './operations';
export type { Rebuild, Removal, Rollback, RollbackPort, SuspensionChange } from './operations';
export { applyFlakeRegistry, seedFlakeName } from './registry-seed';
export { SeedFlakeClient, watchSeedFlakes } from './seed-flakes';
export type { SeedFlakeWatch } from './seed-flakes';
