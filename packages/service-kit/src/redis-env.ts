import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { envVar } from './env';

/**
 * The variables a service reads to reach Redis as its own ACL user. The URL carries no
 * credentials (they would show in every process listing and log of the environment): the
 * user's name is a variable, its password a file (a mounted Secret), read now to fail at
 * start-up and re-read by the connection when it changes.
 */
export function redisEnv(defaultUsername: string) {
  return {
    SEED_REDIS_URL: envVar.redisUrl('redis://127.0.0.1:6379').refine((url) => !url.includes('@'), {
      error:
        'credentials do not belong in the URL: give the user in SEED_REDIS_USERNAME and its password in SEED_REDIS_PASSWORD_FILE',
    }),
    SEED_REDIS_USERNAME: z
      .string()
      .regex(/^[^\s@:]+$/, { error: 'expected a Redis ACL user name' })
      .default(defaultUsername),
    SEED_REDIS_PASSWORD_FILE: z
      .string({ error: "required: a file holding the Redis user's password (a mounted Secret)" })
      .superRefine((file, ctx) => {
        try {
          if (readFileSync(file, 'utf8').trim() === '')
            ctx.addIssue({ code: 'custom', message: 'the file is empty' });
        } catch (error) {
          ctx.addIssue({ code: 'custom', message: `cannot read it: ${(error as Error).message}` });
        }
      }),
  };
}

/** Where and as whom a service reaches Redis, from the variables of `redisEnv`. */
export function redisSettings(vars: {
  SEED_REDIS_URL: string;
  SEED_REDIS_USERNAME: string;
  SEED_REDIS_PASSWORD_FILE: string;
}): { url: string; username: string; passwordFile: string } {
  return {
    url: vars.SEED_REDIS_URL,
    username: vars.SEED_REDIS_USERNAME,
    passwordFile: vars.SEED_REDIS_PASSWORD_FILE,
  };
}
