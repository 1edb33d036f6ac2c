export { FlakeRepo, SEED_META_NIX, demoFlakeFiles } from './flake-repo';
export type { DemoSeed } from './flake-repo';
export { toNixExpression } from './nix-expression';
