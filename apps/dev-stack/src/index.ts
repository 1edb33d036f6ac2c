// What other workspace packages may use of the dev stack: bench/e2e drives its stack and
// pushes to it the way `seed up` does. The command itself runs through main.ts.
export { deliverGithubPush } from './delivery';
export type { PushEvent } from './delivery';
export { runUp } from './up';
export type { RunningStack, UpOptions, UpReport } from './up';
