import { z } from 'zod';

/**
 * The shoot pool's HTTP API (`POST /shoot`, `GET /status`): the request the pool accepts
 * and the answers it gives, parsed by the pool and by clients (the operator CLI) with the
 * same schemas. The gRPC service (`seed.v1.Shoot`) carries the same fields in its proto.
 */

/**
 * Every bound of a shoot request, checked before a caller is looked up or a VM taken.
 * Byte counts are UTF-8 bytes, as the guest kernel counts them: one argument or one
 * `NAME=value` may not exceed its MAX_ARG_STRLEN (128 KiB), and all of them together must
 * fit well inside execve's ARG_MAX share of the stack (2 MiB with an 8 MiB stack).
 */
export const SHOOT_LIMITS = {
  maxArgs: 256,
  maxArgBytes: 128 * 1024,
  maxEnvEntries: 256,
  maxEnvNameBytes: 256,
  /** `NAME=value` */
  maxEnvEntryBytes: 128 * 1024,
  /** argv and env together, each string with its NUL */
  maxCommandBytes: 1024 * 1024,
  minTimeoutMs: 1,
  maxTimeoutMs: 600_000,
  defaultTimeoutMs: 60_000,
  /** The most a pool may be configured to take (`SEED_SHOOT_MAX_STDIN_BYTES`). */
  maxStdinBytesCeiling: 32 * 1024 * 1024,
  /** The most a pool may be configured to answer per stream (`SEED_SHOOT_MAX_OUTPUT_BYTES`). */
  maxOutputBytesCeiling: 32 * 1024 * 1024,
} as const;

const L = SHOOT_LIMITS;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

const envSchema = z.record(z.string(), z.string()).superRefine((env, context) => {
  const names = Object.keys(env);
  if (names.length > L.maxEnvEntries) {
    context.addIssue({
      code: 'custom',
      message: `${names.length} entries, at most ${L.maxEnvEntries}`,
    });
  }
  for (const name of names) {
    if (utf8Bytes(name) > L.maxEnvNameBytes) {
      context.addIssue({
        code: 'custom',
        path: [name],
        message: `name of ${utf8Bytes(name)} bytes, at most ${L.maxEnvNameBytes}`,
      });
    } else if (!ENV_NAME.test(name)) {
      context.addIssue({
        code: 'custom',
        message: `${JSON.stringify(name)} is not a valid variable name`,
      });
    }
    const entry = utf8Bytes(name) + 1 + utf8Bytes(env[name]!);
    if (entry > L.maxEnvEntryBytes) {
      context.addIssue({
        code: 'custom',
        path: [name.slice(0, L.maxEnvNameBytes)],
        message: `NAME=value of ${entry} bytes, at most ${L.maxEnvEntryBytes}`,
      });
    }
  }
});

const argSchema = z.string().superRefine((arg, context) => {
  if (utf8Bytes(arg) > L.maxArgBytes) {
    context.addIssue({
      code: 'custom',
      message: `argument of ${utf8Bytes(arg)} bytes, at most ${L.maxArgBytes}`,
    });
  }
  if (arg.includes('\0')) context.addIssue({ code: 'custom', message: 'argument contains NUL' });
});

/** The bytes execve copies for argv and env: every string with its NUL. */
function commandBytes(argv: readonly string[], env: Readonly<Record<string, string>>): number {
  let total = 0;
  for (const arg of argv) total += utf8Bytes(arg) + 1;
  for (const [name, value] of Object.entries(env)) total += utf8Bytes(name) + utf8Bytes(value) + 2;
  return total;
}

const requestFields = z.strictObject({
  command: z
    .array(argSchema, { error: 'expected an array of strings' })
    .min(1, 'must name a command')
    .max(L.maxArgs, `at most ${L.maxArgs} arguments`)
    .refine((argv) => argv[0] !== '', 'the command name is empty'),
  timeout: z
    .number({ error: 'expected milliseconds' })
    .int('expected whole milliseconds')
    .min(L.minTimeoutMs, `at least ${L.minTimeoutMs} ms`)
    .max(L.maxTimeoutMs, `at most ${L.maxTimeoutMs} ms`)
    .default(L.defaultTimeoutMs),
  env: envSchema.default({}),
  stdin: z
    .string()
    // Base64 takes 4 characters for 3 bytes: anything longer is over every pool's cap.
    .max(Math.ceil(L.maxStdinBytesCeiling / 3) * 4, 'longer than any pool takes')
    .optional(),
  stdinEncoding: z.enum(['utf8', 'base64']).default('utf8'),
});

function checkCommandBytes(
  request: { command: string[]; env: Record<string, string> },
  context: z.RefinementCtx,
): void {
  const total = commandBytes(request.command, request.env);
  if (total > L.maxCommandBytes) {
    context.addIssue({
      code: 'custom',
      path: ['command'],
      message: `command and env of ${total} bytes together, at most ${L.maxCommandBytes}`,
    });
  }
}

/**
 * `POST /shoot`. `timeout` is milliseconds; `stdin` is text, or base64 with
 * `stdinEncoding: "base64"`. The pool further caps stdin at its configured size.
 */
export const shootRequestSchema = requestFields.superRefine(checkCommandBytes);

/** The fields gRPC's ShootRequest shares with the HTTP body (its stdin is bytes). */
export const shootCommandSchema = requestFields
  .pick({ command: true, timeout: true, env: true })
  .superRefine(checkCommandBytes);

/** What a client sends (defaults may be left out). */
export type ShootRequestBody = z.input<typeof shootRequestSchema>;

/** The answer of `POST /shoot`: output as text when both streams are UTF-8, else both base64. */
export const shootAnswerSchema = z.object({
  exitCode: z.number(),
  stdout: z.string(),
  stderr: z.string(),
  durationMs: z.number(),
  timedOut: z.boolean(),
  stdoutTruncated: z.boolean(),
  stderrTruncated: z.boolean(),
  encoding: z.literal('base64').optional(),
});
export type ShootAnswer = z.infer<typeof shootAnswerSchema>;

/** `GET /status`: the pool's VMs and queue, and whether it is serving. */
export interface ShootPoolStatus {
  idle: number;
  busy: number;
  queued: number;
  capacity: number;
  ready: boolean;
}
