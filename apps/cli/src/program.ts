import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { NixClient, NixError } from '@seed/nix-eval';
import { loadConfig } from './config';
import { formatInspection, formatNixError } from './inspect';

/** Where the CLI writes; tests pass their own to read what a user would see. */
export interface CliOutput {
  out: (text: string) => void;
  err: (text: string) => void;
}

function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0)
    throw new InvalidArgumentError('expected a positive integer');
  return parsed;
}

function buildProgram(output: CliOutput): Command {
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
        const config = loadConfig();
        const nix = new NixClient({ nixBinary: config.nix.binary, confFile: config.nix.confFile });
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

  return program;
}

/** Runs the CLI on argv (without node and script) and returns its exit code. */
export async function runCli(argv: readonly string[], output: CliOutput): Promise<number> {
  try {
    await buildProgram(output).parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode; // commander already said why
    output.err(
      `${error instanceof NixError ? formatNixError(error) : `seed: ${(error as Error).message}`}\n`,
    );
    return 1;
  }
}
