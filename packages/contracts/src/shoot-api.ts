import { z } from 'zod';

/**
 * The shoot pool's HTTP API (`POST /shoot`, `GET /status`): the request the pool accepts
 * and the answers it gives, parsed by the pool and by clients (the operator CLI) with the
 * same schemas. The gRPC service (`seed.v1.Shoot`) carries the same fields in its proto.
 */

const SHOOT_MAX_ARGS = 256;
const SHOOT_MAX_ARG_BYTES = 128 * 1024;
const SHOOT_MAX_ENV_ENTRIES = 256;
const SHOOT_MAX_TIMEOUT_MS = 600_000;
const SHOOT_DEFAULT_TIMEOUT_MS = 60_000;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const envSchema = z
  .record(z.string(), z.string().max(SHOOT_MAX_ARG_BYTES, 'env value too long'))
  .superRefine((env, context) => {
    const names = Object.keys(env);
    if (names.length > SHOOT_MAX_ENV_ENTRIES) {
      context.addIssue({ code: 'custom', message: `more than ${SHOOT_MAX_ENV_ENTRIES} entries` });
    }
    for (const name of names) {
      if (!ENV_NAME.test(name)) {
        context.addIssue({
          code: 'custom',
          message: `${JSON.stringify(name)} is not a valid variable name`,
        });
      }
    }
  });

/**
 * `POST /shoot`. `timeout` is milliseconds; `stdin` is text, or base64 with
 * `stdinEncoding: "base64"`. The pool further caps stdin at its configured size.
 */
export const shootRequestSchema = z.strictObject({
  command: z
    .array(
      z
        .string()
        .max(SHOOT_MAX_ARG_BYTES, 'argument too long')
        .refine((arg) => !arg.includes('\0'), 'argument contains NUL'),
      { error: 'expected an array of strings' },
    )
    .min(1, 'must name a command')
    .max(SHOOT_MAX_ARGS, `at most ${SHOOT_MAX_ARGS} arguments`)
    .refine((argv) => argv[0] !== '', 'the command name is empty'),
  timeout: z
    .number({ error: 'expected milliseconds' })
    .int('expected whole milliseconds')
    .min(1, 'at least 1 ms')
    .max(SHOOT_MAX_TIMEOUT_MS, `at most ${SHOOT_MAX_TIMEOUT_MS} ms`)
    .default(SHOOT_DEFAULT_TIMEOUT_MS),
  env: envSchema.default({}),
  stdin: z.string().optional(),
  stdinEncoding: z.enum(['utf8', 'base64']).default('utf8'),
});
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
