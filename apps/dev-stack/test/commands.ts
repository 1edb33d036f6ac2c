// How the tests run `seed up` (the dev stack, in-process, to stop it and see its stack)
// and the everyday `seed` commands against it (the CLI's own program, as a user would).
import { execFile } from 'node:child_process';
import path from 'node:path';
import { runDevStack, type DevStackContext } from '../src/program';

const SEED_CLI = path.resolve(__dirname, '../../cli/dist/main.js');

export interface CommandRun {
  code: number;
  out: string;
  err: string;
}

/** `seed up <argv>` in-process: what a user would have seen, and its exit code. */
export async function seedUp(
  argv: string[],
  context: DevStackContext = {},
  onOutput: (text: string) => void = () => undefined,
): Promise<CommandRun> {
  let out = '';
  let err = '';
  const code = await runDevStack(
    argv,
    {
      out: (text) => {
        out += text;
        onOutput(text);
      },
      err: (text) => {
        err += text;
        onOutput(text);
      },
    },
    context,
  );
  return { code, out, err };
}

/** `seed <argv>` as a process of its own, with `env` as its whole environment. */
export function seed(argv: string[], options: { env: NodeJS.ProcessEnv }): Promise<CommandRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [SEED_CLI, ...argv],
      { env: options.env, encoding: 'utf8' },
      (error, out, err) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, out, err });
      },
    );
  });
}
