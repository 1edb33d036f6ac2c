// What a command-line client of Seed needs (the seed CLI, the dev stack): the services'
// clients, and their answers as text.
export { positiveInteger, runProgram } from './arguments';
export { BuilderApi, PlatformError, ReconcilerApi, ShootApi } from './platform-api';
export {
  formatBuild,
  formatBuildList,
  formatFlakeStatus,
  formatInstances,
  formatPhases,
  formatStatusList,
  seconds,
  short,
} from './reports';
export { formatFields, formatTable } from './table';
