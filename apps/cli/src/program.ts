import { readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError } from 'commander';
import { NixClient, NixError } from '@seed/nix-eval';
import { loadConfig, loadKubeAccess, resolveKubeAccess, type CliConfig } from './config';
import { removeSeedFlake, requestRebuild, rollBack, setSuspended } from '@seed/seed-flakes';
import { formatInspection, formatNixError } from './inspect';
import { instanceRecipient } from './keys/instance-keys';
import { streamInstanceLogs } from './logs/instance-logs';
import { KubeLogsRepository } from './logs/kube-logs.repository';
import {
  BuilderApi,
  positiveInteger,
  runProgram,
  formatBuild,
  formatBuildList,
  formatFlakeStatus,
  formatStatusList,
  ReconcilerApi,
  ShootApi,
} from '@seed/platform-client';
import { runDevStack } from './dev-stack';

/** Where the CLI writes; tests pass their own to read what a user would see. */
export interface CliOutput {
  /** Bytes only from `seed shoot`, whose command's output may be binary. */
  out: (text: string | Uint8Array) => void;
  err: (text: string | Uint8Array) => void;
}

/** What a run of the CLI reads besides argv; tests pass their own. */
export interface CliContext {
  env?: NodeJS.ProcessEnv;
  /** Ends `seed logs -f`; defaults to SIGINT and SIGTERM of this process. */
  signal?: AbortSignal;
}

/** A command's exit code other than 0 or 1 (a shoot passes its command's code through). */
class ExitCode extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

function lineCount(value: string): number {
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(parsed))
    throw new InvalidArgumentError('expected a whole number of lines');
  return parsed;
}

function limit(value: string): number {
  const parsed = positiveInteger(value);
  if (parsed > 200) throw new InvalidArgumentError('expected at most 200');
  return parsed;
}

function commitId(value: string): string {
  if (!/^[0-9a-f]{40}$/.test(value))
    throw new InvalidArgumentError('expected a full 40-digit git commit id');
  return value;
}

function seconds(value: string): number {
  const parsed = positiveInteger(value);
  if (parsed > 3600) throw new InvalidArgumentError('expected at most 3600');
  return parsed;
}

function addEnv(entry: string, env: Record<string, string> = {}): Record<string, string> {
  const split = entry.indexOf('=');
  if (split <= 0) throw new InvalidArgumentError('expected NAME=value');
  return { ...env, [entry.slice(0, split)]: entry.slice(split + 1) };
}

const KUBECONFIG_OPTION = [
  '--kubeconfig <file>',
  'kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, in-cluster)',
] as const;

function buildProgram(output: CliOutput, context: CliContext): Command {
  let config: CliConfig | undefined;
  const settings = () => (config ??= loadConfig(context.env ?? process.env));
  const kubeAccess = (options: { kubeconfig?: string }) =>
    loadKubeAccess(resolveKubeAccess(options.kubeconfig, context.env ?? process.env));

  const program = new Command()
    .name('seed')
    .description('Operate Seed: flakes whose seeds.<name> run as NixOS microVMs on Kubernetes')
    .exitOverride()
    .configureOutput({ writeOut: output.out, writeErr: output.err })
    .showHelpAfterError();

  program
    .command('inspect')
    .description(
      "lock a flake, evaluate every seed's meta, build every image, print the generation",
    )
    .argument('<flake>', 'flake reference, e.g. github:owner/repo or git+file:///srv/repo')
    .option('--rev <commit>', 'inspect this commit instead of the branch head')
    .option('--branch <name>', 'the branch that holds --rev, when it is not the default one')
    .option(
      '--timeout <ms>',
      'give up on each nix step after this many milliseconds',
      positiveInteger,
    )
    .option('--json', 'print JSON instead of tables')
    .action(
      async (
        flake: string,
        options: { rev?: string; branch?: string; timeout?: number; json?: boolean },
      ) => {
        const nix = new NixClient(settings().nix);
        const inspection = await nix.inspect(flake, {
          revision: options.rev,
          branch: options.branch,
          timeoutMs: options.timeout,
        });
        output.out(
          options.json ? `${JSON.stringify(inspection, null, 2)}\n` : formatInspection(inspection),
        );
      },
    );

  program
    .command('up')
    .description(
      "run the whole platform on this machine and push the example through it (Seed's dev " +
        'stack, `seed-up`; `seed up --help` for its options)',
    )
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[options...]')
    .action(async (args: string[]) => {
      const code = await runDevStack(args, context.env ?? process.env);
      if (code !== 0) throw new ExitCode(code);
    });

  program
    .command('status')
    .description(
      "a flake's generation, instances, rollout and last error (every flake's without one)",
    )
    .argument('[flake]', 'the flake URI as registered')
    .option('--json', 'print JSON')
    .action(async (flake: string | undefined, options: { json?: boolean }) => {
      const reconciler = new ReconcilerApi(settings().reconcilerAddress, settings().operatorTls);
      try {
        if (flake === undefined) {
          const statuses = await reconciler.list();
          output.out(options.json ? json(statuses) : formatStatusList(statuses));
        } else {
          const status = await reconciler.status(flake);
          output.out(options.json ? json(status) : formatFlakeStatus(status));
        }
      } finally {
        reconciler.close();
      }
    });

  program
    .command('logs')
    .description("an instance's log: its journal, which the instance forwards to its pod's console")
    .argument('<flake>', 'the flake URI as registered')
    .argument('<instance>', 'the instance (seeds.<name>)')
    .option('-f, --follow', 'keep printing as the instance writes, until Ctrl-C')
    .option('--tail <n>', 'only the last N lines', lineCount)
    .option('--previous', "the previous container's log (the one before a crash or restart)")
    .option(...KUBECONFIG_OPTION)
    .action(
      async (
        flake: string,
        instance: string,
        options: { follow?: boolean; tail?: number; previous?: boolean; kubeconfig?: string },
      ) => {
        const kube = KubeLogsRepository.connect(
          resolveKubeAccess(options.kubeconfig, context.env ?? process.env),
        );
        const signal = options.follow ? (context.signal ?? interruptSignal()) : context.signal;
        await streamInstanceLogs(
          kube,
          {
            flake,
            instance,
            follow: options.follow ?? false,
            tailLines: options.tail,
            previous: options.previous ?? false,
          },
          (chunk) => output.out(chunk),
          signal,
          (target) => {
            if (target.pods.length > 1)
              output.err(
                `seed: pod ${target.pod} (the instance has ${target.pods.length}: ${target.pods.join(', ')})\n`,
              );
          },
        );
        if (options.follow && signal?.aborted) throw new ExitCode(130);
      },
    );

  program
    .command('keys')
    .description(
      "an instance's age recipient: encrypt its seed.secrets to it (sops --encrypt --age <recipient>)",
    )
    .argument('<flake>', 'the flake URI as registered')
    .argument('<instance>', 'the instance (seeds.<name>)')
    .option(...KUBECONFIG_OPTION)
    .action(async (flake: string, instance: string, options: { kubeconfig?: string }) => {
      const kube = KubeLogsRepository.connect(
        resolveKubeAccess(options.kubeconfig, context.env ?? process.env),
      );
      output.out(`${await instanceRecipient(kube, flake, instance)}\n`);
    });

  const suspension =
    (suspend: boolean) =>
    async (target: string, options: { reason?: string; kubeconfig?: string }) => {
      const config = kubeAccess(options);
      const change = await setSuspended(config, target, suspend, options.reason);
      const state = suspend ? 'suspended' : 'resumed';
      output.out(
        change.changed
          ? `${change.seedFlake} (${change.flake}) ${state} by ${change.by}\n`
          : `${change.seedFlake} (${change.flake}) was already ${state}: nothing changed\n`,
      );
    };
  for (const [name, suspend, description] of [
    [
      'suspend',
      true,
      'stop deploying a flake: pushes and polls queue nothing, what runs stays (an Event names who asked)',
    ],
    ['resume', false, 'deploy a suspended flake again from its next push or poll'],
  ] as const)
    program
      .command(name)
      .description(description)
      .argument('<seedflake>', "the SeedFlake's name, or the flake URI it serves")
      .option('--reason <text>', 'why, for the Event')
      .option(...KUBECONFIG_OPTION)
      .action(suspension(suspend));

  program
    .command('rollback')
    .description(
      "apply one of a flake's last generations again, without a build, and suspend it so the next push does not undo it",
    )
    .argument('<seedflake>', "the SeedFlake's name, or the flake URI it serves")
    .option(
      '--to <generation|commit>',
      'a kept generation or a commit prefix (default: the previous)',
    )
    .option(...KUBECONFIG_OPTION)
    .action(async (target: string, options: { to?: string; kubeconfig?: string }) => {
      const config = kubeAccess(options);
      const reconciler = new ReconcilerApi(settings().reconcilerAddress, settings().operatorTls);
      let done;
      try {
        done = await rollBack(config, reconciler, target, options.to ?? '');
      } finally {
        reconciler.close();
      }
      output.out(
        `${done.seedFlake} (${done.flake}) ${done.changed ? 'rolled back to' : 'already runs'} generation ${done.generation}; suspended by ${done.by} until seed resume\n`,
      );
    });

  program
    .command('rebuild')
    .description(
      'build a flake now: its branch head, or --commit (deployed even if older than what runs); the webhook queues it',
    )
    .argument('<seedflake>', "the SeedFlake's name, or the flake URI it serves")
    .option('--commit <sha>', 'the commit to build (default: the branch head)', commitId)
    .option('--wait <seconds>', "how long to wait for the webhook's answer", seconds, 60)
    .option(...KUBECONFIG_OPTION)
    .action(
      async (target: string, options: { commit?: string; wait: number; kubeconfig?: string }) => {
        const config = kubeAccess(options);
        const done = await requestRebuild(config, target, {
          ...(options.commit !== undefined && { commit: options.commit }),
          waitMs: options.wait * 1000,
        });
        output.out(
          `${done.seedFlake} (${done.flake}): build of ${done.commit} queued as ${done.jobId} by ${done.by} (seed builds ${done.jobId})\n`,
        );
      },
    );

  program
    .command('remove')
    .description(
      'delete a SeedFlake, naming who asked: its instances go after the grace period, its volume claims stay',
    )
    .argument('<seedflake>', "the SeedFlake's name, or the flake URI it serves")
    .option(...KUBECONFIG_OPTION)
    .action(async (target: string, options: { kubeconfig?: string }) => {
      const config = kubeAccess(options);
      const done = await removeSeedFlake(config, target);
      output.out(
        `${done.seedFlake} (${done.flake}) deleted by ${done.by}: its instances are removed after the grace period, its volume claims kept (seed status lists them)\n`,
      );
    });

  program
    .command('builds')
    .description('recent builds (of one flake with --flake), or one build with its log')
    .argument('[build]', 'a build id from the list')
    .option('--flake <uri>', "only this flake's builds")
    .option('--limit <n>', 'how many builds to list (1-200)', limit, 20)
    .option('--json', 'print JSON')
    .action(
      async (
        id: string | undefined,
        options: { flake?: string; limit: number; json?: boolean },
      ) => {
        const builder = new BuilderApi(settings().builderUrl, settings().builderToken);
        if (id !== undefined) {
          const build = await builder.get(id);
          output.out(options.json ? json(build) : formatBuild(build));
          return;
        }
        const builds = await builder.list({ flake: options.flake, limit: options.limit });
        output.out(options.json ? json(builds) : formatBuildList(builds));
      },
    );

  program
    .command('shoot')
    .description(
      "run a command in a fresh microVM of the shoot pool; exits with the command's code",
    )
    .argument('<command...>', 'the command and its arguments (put -- before them)')
    .option(
      '--timeout <ms>',
      'kill the command after this many milliseconds',
      positiveInteger,
      60_000,
    )
    .option(
      '--env <name=value>',
      'an environment variable for the command (repeat for more)',
      addEnv,
    )
    .option('--json', "print the pool's answer as JSON")
    .action(
      async (
        command: string[],
        options: { timeout: number; env?: Record<string, string>; json?: boolean },
      ) => {
        const { shootUrl, shootTokenFile } = settings();
        const token =
          shootTokenFile === undefined ? undefined : await readShootToken(shootTokenFile);
        const result = await new ShootApi(shootUrl, token).run({
          command,
          timeout: options.timeout,
          env: options.env ?? {},
        });
        if (options.json) {
          output.out(json(result));
        } else {
          const decode = (text: string) =>
            result.encoding === 'base64' ? Buffer.from(text, 'base64') : text;
          output.out(decode(result.stdout));
          output.err(decode(result.stderr));
          if (result.timedOut) output.err(`seed: timed out after ${options.timeout} ms\n`);
          if (result.stdoutTruncated || result.stderrTruncated)
            output.err('seed: output truncated by the shoot pool\n');
        }
        if (result.exitCode !== 0) throw new ExitCode(result.exitCode);
      },
    );

  return program;
}

/** The instance's shoot token (the kubelet keeps the file fresh: read it for each call). */
async function readShootToken(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (error) {
    throw new Error(`SEED_SHOOT_TOKEN_FILE: cannot read ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** Aborts on SIGINT or SIGTERM, so `seed logs -f` ends with the code of an interrupt. */
function interruptSignal(): AbortSignal {
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  process.once('SIGTERM', () => controller.abort());
  return controller.signal;
}

/** Runs the CLI on argv (without node and script) and returns its exit code. */
export function runCli(
  argv: readonly string[],
  output: CliOutput,
  context: CliContext = {},
): Promise<number> {
  return runProgram(buildProgram(output, context), argv, (error) => {
    if (error instanceof ExitCode) return error.code;
    output.err(
      `${error instanceof NixError ? formatNixError(error) : `seed: ${(error as Error).message}`}\n`,
    );
    return 1;
  });
}
