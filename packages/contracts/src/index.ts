export {
  EXPOSE_PROTOCOLS,
  SIZE_TIERS,
  canonicalJson,
  parseSeedMeta,
  seedMetaSchema,
  transportsOf,
} from './meta';
export type {
  ConnectEntry,
  ExposeEntry,
  ExposeProtocol,
  MetaParseResult,
  MetaProblem,
  SeedMeta,
  SizeTier,
  StorageEntry,
} from './meta';
export {
  BUILDS_QUEUE,
  BUILD_JOB_NAME,
  BUILD_JOB_OPTIONS,
  FORGES,
  buildJobId,
  buildJobSchema,
  flakeKey,
  latestBuildKey,
} from './jobs';
export type { BuildJob, Forge } from './jobs';
