/** The fields of a `.narinfo` the cache's collection reads. */
export interface NarInfo {
  /** Its file name in the cache, `<hash>.narinfo`. */
  file: string;
  /** `StorePath:`, `/nix/store/<hash>-<name>`. */
  storePath: string;
  /** `URL:`, the NAR relative to the cache, `nar/<file hash>.nar[.zst]`. */
  url: string;
  /** `References:`, as base names `<hash>-<name>`. */
  references: string[];
}

export function parseNarInfo(file: string, text: string): NarInfo | undefined {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(': ');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 2).trim());
  }
  const storePath = fields.get('StorePath');
  const url = fields.get('URL');
  if (storePath === undefined || url === undefined) return undefined;
  const references = fields.get('References');
  return { file, storePath, url, references: references ? references.split(/\s+/) : [] };
}

/**
 * What the cache no longer needs, given the images that must stay fetchable: every
 * narinfo outside their closures (followed through the narinfos' own references), and the
 * NARs only those narinfos name. A NAR no narinfo names is left alone: it may be one a
 * publish is writing now, whose narinfo comes after it.
 */
export function cacheGarbage(
  narinfos: readonly NarInfo[],
  liveImages: readonly string[],
): { narinfos: NarInfo[]; nars: string[] } {
  const byBase = new Map(narinfos.map((info) => [baseName(info.storePath), info]));
  const live = new Set<string>();
  const pending = liveImages.map(baseName);
  for (let base = pending.pop(); base !== undefined; base = pending.pop()) {
    if (live.has(base)) continue;
    live.add(base);
    for (const reference of byBase.get(base)?.references ?? []) pending.push(reference);
  }
  const dead = narinfos.filter((info) => !live.has(baseName(info.storePath)));
  const liveNars = new Set(
    narinfos.filter((info) => live.has(baseName(info.storePath))).map((info) => info.url),
  );
  const nars = [...new Set(dead.map((info) => info.url))].filter((url) => !liveNars.has(url));
  return { narinfos: dead, nars };
}

function baseName(storePath: string): string {
  return storePath.slice(storePath.lastIndexOf('/') + 1);
}
