import { Command } from 'commander';
import { localNix } from '@seed/nix-eval';
import { positiveInteger, runProgram } from '@seed/platform-client';
import { StepFailed } from './progress';
import { runUp, type RunningStack } from './up';

/** Where the dev stack writes; tests pass their own to read what a user would see. */
export interface DevStackOutput {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** What a run reads besides argv; tests pass their own. */
export interface DevStackContext {
  env?: NodeJS.ProcessEnv;
  /** Ends the run early (Ctrl-C); defaults to SIGINT and SIGTERM of this process. */
  signal?: AbortSignal;
  /** Replaces `--keep`'s wait for Ctrl-C (tests). */
  whileUp?: (stack: RunningStack) => Promise<void>;
}

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

/** The environment for the everyday `seed` commands against a stack `--keep` runs. */
function stackEnvironment(stack: RunningStack): string {
  return [
    `export SEED_BUILDER_URL=${stack.builderUrl}`,
    `export SEED_BUILDER_API_TOKEN_FILE=${stack.builderTokenFile}`,
    `export SEED_RECONCILER_ADDRESS=${stack.reconcilerAddress}`,
    `export SEED_TLS_DIR=${stack.operatorTlsDir}`,
    `export SEED_SHOOT_URL=${stack.shootUrl}`,
    `export KUBECONFIG=${stack.kubeconfigPath}`,
    `# flake ${stack.flake}: commit in ${stack.flakeDir}; webhook ${stack.webhookUrl}/webhook`,
    `# Redis (the builds queue) ${stack.redisUrl} as ${stack.redisAdmin.username}, password in ${stack.redisAdmin.passwordFile}`,
    `# service logs in ${stack.logDir}`,
    `# Prometheus (Seed's alert rules loaded; a Grafana data source) ${stack.prometheusUrl}`,
  ].join('\n');
}

/** Resolves when the signal aborts. */
function untilInterrupted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/**
 * Aborts on the first SIGINT or SIGTERM, so the run can stop what it started; a second
 * one says it is still stopping, a third exits at once (owned processes are killed then).
 */
function interruptSignal(output: DevStackOutput): AbortSignal {
  const controller = new AbortController();
  let signals = 0;
  const onSignal = () => {
    signals += 1;
    if (signals === 1) controller.abort();
    else if (signals === 2) output.err('seed up: still stopping the stack (once more to force)\n');
    else process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return controller.signal;
}

function buildProgram(output: DevStackOutput, context: DevStackContext): Command {
  return new Command()
    .name('seed up')
    .description(
      'run the whole platform on this machine: push the example flake, deliver a signed ' +
        'webhook, follow build and apply, roll every instance out on a real node, change one, ' +
        'run a shoot from inside a pod; then stop everything',
    )
    .exitOverride()
    .configureOutput({ writeOut: output.out, writeErr: output.err })
    .showHelpAfterError()
    .option('--keep', 'keep the stack running after the steps, until Ctrl-C')
    .option(
      '--wait-timeout <ms>',
      'how long each wait (readiness, a build, the shoot pool) may take',
      positiveInteger,
      300_000,
    )
    .option('--json', 'print the final report as JSON (progress goes to stderr)')
    .action(async (options: { keep?: boolean; waitTimeout: number; json?: boolean }) => {
      const signal = context.signal ?? interruptSignal(output);
      const write = options.json ? output.err : output.out;
      const whileRunning =
        context.whileUp ??
        (options.keep
          ? async (stack: RunningStack) => {
              write(`\nthe stack is up; in another shell:\n${stackEnvironment(stack)}\n`);
              write('press Ctrl-C to stop it\n');
              await untilInterrupted(signal);
            }
          : undefined);
      const report = await runUp({
        nix: localNix(context.env ?? process.env),
        write,
        waitTimeoutMs: options.waitTimeout,
        signal,
        whileRunning,
      });
      output.out(options.json ? json(report) : 'seed up: every step passed\n');
    });
}

/** Runs the dev stack on argv (without node and script) and returns its exit code. */
export function runDevStack(
  argv: readonly string[],
  output: DevStackOutput,
  context: DevStackContext = {},
): Promise<number> {
  return runProgram(buildProgram(output, context), argv, (error) => {
    if (error instanceof StepFailed && error.interrupted) {
      output.err(`seed: interrupted during step "${error.step}"; the stack was stopped\n`);
      return 130;
    }
    output.err(`seed: ${(error as Error).message}\n`);
    return 1;
  });
}
