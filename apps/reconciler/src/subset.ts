/**
 * Whether everything Seed sets in `desired` already holds in `live`. The API server adds
 * defaults and status, which are ignored; a field Seed owns that was edited or removed
 * makes the object differ, and server-side apply puts it back.
 */
export function isSubset(desired: unknown, live: unknown): boolean {
  if (desired === null || typeof desired !== 'object') return desired === live;
  if (Array.isArray(desired)) {
    return (
      Array.isArray(live) &&
      live.length === desired.length &&
      desired.every((item, index) => isSubset(item, live[index]))
    );
  }
  if (live === null || typeof live !== 'object' || Array.isArray(live)) return false;
  const record = live as Record<string, unknown>;
  return Object.entries(desired as Record<string, unknown>).every(([key, value]) =>
    isSubset(value, record[key]),
  );
}
