import { createHash } from 'node:crypto';
import { canonicalJson, type SeedMeta } from './meta';

/**
 * The identities ARCHITECTURE.md defines ("Identities and hashes"): the namespace of a
 * flake, the generation of a flake revision and the hash of one instance. The builder
 * computes them, the reconciler checks and stamps them, the CLI finds flakes by them; one
 * owner keeps the three from drifting apart.
 */

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
 * The full sha256 (hex) of a flake URI. The namespace keeps only about 30 bits of it, so
 * two flakes can share a namespace name; the namespace records this to tell them apart.
 */
export function flakeUriDigest(flakeUri: string): string {
  return sha256Hex(flakeUri);
}

/**
 * The Kubernetes namespace of a flake, compatible with the original Seed: base32 of the
 * *text* of the first 20 hex digits of sha256(flakeUri), lower-cased, first 12 letters.
 */
export function deriveNamespace(flakeUri: string): string {
  const digits = sha256Hex(flakeUri).slice(0, 20);
  return `s-${base32(Buffer.from(digits, 'ascii')).toLowerCase().slice(0, 12)}`;
}

/** One `seeds.<name>` as the identities see it: its name, image and meta. */
export interface InstanceIdentity {
  name: string;
  /** Store path of `seeds.<name>.image`. */
  image: string;
  meta: SeedMeta;
}

/** `<name>=<image path> <canonical meta JSON>\n`: what both hashes are made of. */
function instanceLine(instance: InstanceIdentity): string {
  return `${instance.name}=${instance.image} ${canonicalJson(instance.meta)}\n`;
}

/**
 * The generation of a flake revision: the first 12 hex digits of sha256 over one line per
 * seed, sorted by name. The original Seed hashed only `<name>=<image path>`; carrying the
 * meta makes a size- or port-only change a new generation too. Equal generations mean the
 * reconciler has nothing to write.
 */
export function generationHash(instances: readonly InstanceIdentity[]): string {
  const lines = [...instances]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map(instanceLine);
  return sha256Hex(lines.join('')).slice(0, 12);
}

/**
 * The hash of one instance: the first 12 hex digits of sha256 over its own line. It
 * changes only when that instance's image or meta does, so objects stamped with it are
 * rewritten only when their instance changed, whatever else the push changed.
 */
export function instanceHash(instance: InstanceIdentity): string {
  return sha256Hex(instanceLine(instance)).slice(0, 12);
}
