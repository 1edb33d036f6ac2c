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
