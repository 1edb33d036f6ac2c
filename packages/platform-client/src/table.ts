/** Lays out rows as columns separated by two spaces, the way kubectl prints tables. */
export function formatTable(header: readonly string[], rows: readonly string[][]): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  return [header, ...rows]
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** `name  value` lines with the values aligned, for a record's fields. */
export function formatFields(fields: readonly [string, string][]): string {
  return formatTable(['', ''], fields).split('\n').slice(1).join('\n');
}
