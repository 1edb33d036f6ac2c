export { DEFAULT_MAX_OUTPUT_BYTES, NixClient, publicKeyOf } from './nix.client';
export type {
  BuildOptions,
  BuiltSeed,
  CallOptions,
  CollectedGarbage,
  EvaluatedSeed,
  FlakeInspection,
  InspectOptions,
  LockedFlake,
  NixClientOptions,
  SigningKey,
} from './nix.client';
export { localNix } from './local-nix';
export type { LocalNix } from './local-nix';
export { substituterNixConfig } from './substituter';
export type { Substituter } from './substituter';
export { NixError } from './errors';
export type { NixErrorKind } from './errors';
export { pinFlakeRef } from './flake-ref';
