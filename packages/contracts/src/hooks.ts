import { createHash } from 'node:crypto';

/**
 * The id of a flake's own delivery URL on the webhook, `POST /hooks/<id>`:
 * `sha256("seed-hook\n<flake>\n<secret>")`, its first 32 hex digits. Only someone who
 * knows the flake's secret can name the URL, and the webhook knows which secret to check
 * before it parses a byte of the body (Flux's Receiver does the same). An operator
 * computes it with `printf 'seed-hook\n%s\n%s' "$flake" "$secret" | sha256sum | cut -c1-32`.
 */
export function flakeHookId(flake: string, secret: string): string {
  return createHash('sha256')
    .update(`seed-hook\n${flake}\n${secret}`, 'utf8')
    .digest('hex')
    .slice(0, 32);
}
