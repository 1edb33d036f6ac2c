import { createHash } from 'node:crypto';
import { canonicalJson, type SeedMeta } from '@seed/contracts';

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 without padding. */
function base32(bytes: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32_ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32_ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * The Kubernetes namespace of a flake, compatible with the original Seed: base32 of the
 * *text* of the first 20 hex digits of sha256(flakeUri), lower-cased, first 12 letters.
 */
export function deriveNamespace(flakeUri: string): string {
  const digits = sha256Hex(flakeUri).slice(0, 20);
  return `s-${base32(Buffer.from(digits, 'ascii')).toLowerCase().slice(0, 12)}`;
}

export interface GenerationInput {
  name: string;
  /** Store path of `seeds.<name>.image`. */
  image: string;
  meta: SeedMeta;
}

/**
 * The generation of a flake revision: the first 12 hex digits of sha256 over one line per
 * seed, sorted by name, `<name>=<image path> <canonical meta JSON>\n`. The original Seed
 * hashed only `<name>=<image path>`; carrying the meta makes a size- or port-only change a
 * new generation too. Equal generations mean the reconciler has nothing to write.
 */
export function generationHash(seeds: readonly GenerationInput[]): string {
  const lines = [...seeds]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((seed) => `${seed.name}=${seed.image} ${canonicalJson(seed.meta)}\n`);
  return sha256Hex(lines.join('')).slice(0, 12);
}
