import { deriveNamespace } from '@seed/contracts';

/**
 * Two flake URIs that map to one namespace. The namespace keeps only about 30 bits of the
 * URI's sha256, so a birthday search finds a pair among a few tens of thousands of URIs
 * (`github:tenant-33099/app` and `github:tenant-34461/app`, after 34,462 URIs, ~0.5 s).
 */
export function collidingFlakeUris(): [string, string] {
  const seen = new Map<string, string>();
  for (let index = 0; ; index++) {
    const flake = `github:tenant-${index}/app`;
    const earlier = seen.get(deriveNamespace(flake));
    if (earlier) return [earlier, flake];
    seen.set(deriveNamespace(flake), flake);
  }
}
