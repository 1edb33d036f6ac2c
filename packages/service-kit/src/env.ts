import { redactFlakeRef, tlsDirectorySchema } from '@seed/contracts';
import { z } from 'zod';
import { TokenFile } from './bearer-token';

/** Start-up configuration that cannot be used; lists every bad variable at once. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';

  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
  }
}

/**
 * Parses the environment with a zod schema whose keys are variable names. Every
 * missing or malformed variable is reported by name in one error, so an operator fixes
 * them all in one go instead of one per restart. A value is echoed with any credentials
 * in it as `***` (a URL's user and password, `?token=`…): the message goes to the
 * service's log.
 */
export function parseEnv<T extends z.ZodType>(schema: T, env: NodeJS.ProcessEnv): z.infer<T> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => {
      const name = issue.path.map(String).join('.') || '(environment)';
      const value = issue.path.length === 1 ? env[String(issue.path[0])] : undefined;
      return value === undefined
        ? `${name}: ${issue.message}`
        : `${name}=${JSON.stringify(redactFlakeRef(value))}: ${issue.message}`;
    }),
  );
}

/** Env helpers that read the way operators write variables. */
export const envVar = {
  /** A TCP port, 0 meaning "any free port" (for tests). */
  port: (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback),
  positiveInt: (fallback: number) => z.coerce.number().int().positive().default(fallback),
  /** 0 or more: 0 usually turns the thing off. */
  nonNegativeInt: (fallback: number) => z.coerce.number().int().min(0).default(fallback),
  /** "true"/"false"/"1"/"0" only: a typo must not silently mean false. */
  flag: (fallback: boolean) =>
    z
      .enum(['true', 'false', '1', '0'], { error: 'expected true, false, 1 or 0' })
      .default(fallback ? 'true' : 'false')
      .transform((value) => value === 'true' || value === '1'),
  redisUrl: (fallback: string) =>
    z
      .string()
      .default(fallback)
      .refine((url) => /^rediss?:\/\/[^/]+(\/\d+)?$/.test(url), {
        error: 'expected redis://HOST:PORT[/DB] or rediss://…',
      }),
  /** A folder with `tls.crt`, `tls.key` and `ca.crt` (a mounted TLS Secret), checked now. */
  tlsDir: () => tlsDirectorySchema,
  /** How often certificate files are re-read, in seconds. */
  tlsReloadSeconds: () => z.coerce.number().int().positive().default(60),
  /** A file holding a bearer token (a mounted Secret), read now and whenever it changes. */
  tokenFile: () =>
    z
      .string({ error: 'required: a file holding the API token (a mounted Secret)' })
      .transform((file, ctx) => {
        try {
          return new TokenFile(file);
        } catch (error) {
          ctx.addIssue({ code: 'custom', message: (error as Error).message });
          return z.NEVER;
        }
      }),
  logLevel: () =>
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
};
