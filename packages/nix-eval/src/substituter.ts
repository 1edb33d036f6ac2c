/** A binary cache a node's nix substitutes from, and the only keys it trusts for it. */
export interface Substituter {
  /** Where the cache answers, e.g. the builder's `http://10.0.0.5:8081/nix-cache`. */
  url: string;
  /** `name:base64` public keys; a path signed by none of them is refused. */
  publicKeys: readonly string[];
}

const PUBLIC_KEY = /^[^:\s]+:[A-Za-z0-9+/]{43}=$/;

/**
 * nix.conf lines that make a node's nix fetch store paths it lacks from Seed's binary
 * cache and from nowhere else, trusting only the cache's own keys (never
 * cache.nixos.org's default key). For `NIX_CONFIG` (read after every nix.conf, so these
 * lines win), or appended to the nix.conf of nix-snapshotter's nix.
 */
export function substituterNixConfig(cache: Substituter): string {
  if (!/^https?:\/\/[^\s/]+(\/\S*)?$/.test(cache.url)) {
    throw new TypeError(
      `substituter URL ${JSON.stringify(cache.url)}: expected http(s)://HOST[:PORT][/PATH]`,
    );
  }
  if (cache.publicKeys.length === 0) {
    throw new TypeError('a substituter needs at least one trusted public key');
  }
  for (const key of cache.publicKeys) {
    if (!PUBLIC_KEY.test(key)) {
      throw new TypeError(
        `${JSON.stringify(key)} is not a nix public key (NAME:BASE64 of 32 bytes)`,
      );
    }
  }
  return [
    `substituters = ${cache.url.replace(/\/+$/, '')}`,
    `trusted-public-keys = ${cache.publicKeys.join(' ')}`,
    // nix's default, stated: an unsigned path, or one signed by another key, is refused.
    'require-sigs = true',
    // A path asked for before the builder published it must not stay "missing" for an hour.
    'narinfo-cache-negative-ttl = 0',
    'connect-timeout = 10',
    '',
  ].join('\n');
}
