// The metric names a PromQL expression reads: enough of PromQL for a dashboard's queries.

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'inf',
  'nan',
]);

/**
 * Every metric name `expr` selects. Strings, label matchers (`{…}`), range and subquery
 * selectors (`[…]`), grouping clauses (`by (…)`, `on (…)`, …) and Grafana variables are
 * removed first; of the identifiers left, a function name is followed by `(`, a keyword is
 * in KEYWORDS, and everything else is a metric.
 */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const name = match[0];
    const rest = stripped.slice(match.index + name.length);
    if (/^\s*\(/.test(rest)) continue; // a function or aggregation
    if (KEYWORDS.has(name.toLowerCase())) continue;
    // A number's exponent (1e3) or a duration suffix (5m) is not a name.
    if (match.index > 0 && /[0-9.]/.test(stripped[match.index - 1]!)) continue;
    names.add(name);
  }
  return [...names].sort();
}

/** The series a name is exported as: a histogram's or summary's suffixes name its family. */
export function isExported(name: string, exported: ReadonlySet<string>): boolean {
  if (exported.has(name)) return true;
  const family = name.replace(/_(?:bucket|sum|count)$/, '');
  return family !== name && exported.has(family);
}
