import { runCli, type CliContext, type CliOutput } from '../src/program';

const text = (chunk: string | Uint8Array) =>
  typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');

/** Runs the CLI in-process and returns what a user would have seen, and its exit code. */
export async function seed(
  argv: string[],
  context: CliContext = {},
  onOutput: (text: string) => void = () => undefined,
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const output: CliOutput = {
    out: (chunk) => {
      out += text(chunk);
      onOutput(text(chunk));
    },
    err: (chunk) => {
      err += text(chunk);
      onOutput(text(chunk));
    },
  };
  const code = await runCli(argv, output, context);
  return { code, out, err };
}
