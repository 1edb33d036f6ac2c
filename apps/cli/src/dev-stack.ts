// `seed up` is Seed's dev stack (apps/dev-stack), a program of its own: installing the
// operator CLI brings neither the services nor a Kubernetes API server build. The CLI
// runs it the way git runs `git-<name>`: `seed-up` from PATH, which `pnpm seed` (a
// checkout's scripts/seed) puts there.
import { spawn } from 'node:child_process';

export const DEV_STACK_COMMAND = 'seed-up';

/** Runs `seed-up` with the arguments, on this terminal; resolves with its exit code. */
export function runDevStack(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(DEV_STACK_COMMAND, args, { stdio: 'inherit', env });
    // Ctrl-C reaches the dev stack too (same terminal): it stops what it started and exits
    // 130; this process waits for that instead of dying first.
    const ignore = () => undefined;
    process.on('SIGINT', ignore);
    process.on('SIGTERM', ignore);
    const done = () => {
      process.off('SIGINT', ignore);
      process.off('SIGTERM', ignore);
    };
    child.once('error', (error: NodeJS.ErrnoException) => {
      done();
      reject(
        error.code === 'ENOENT'
          ? new Error(
              `seed up runs Seed's dev stack (${DEV_STACK_COMMAND}), which is not on PATH: from a checkout of Seed, run \`pnpm seed up\``,
            )
          : error,
      );
    });
    child.once('exit', (code, signal) => {
      done();
      resolve(code ?? (signal === 'SIGINT' ? 130 : 1));
    });
  });
}
