// What other workspace packages may use of the CLI: bench/e2e drives `seed up`'s stack
// and pushes to it the way `seed up` does. Commands are run through main.ts.
export { BuilderApi } from './platform-api';
export { deliverGithubPush } from './up/delivery';
export type { PushEvent } from './up/delivery';
export { loadConfig } from './config';
export { runUp } from './up/up';
export type { RunningStack, UpOptions, UpReport } from './up/up';
