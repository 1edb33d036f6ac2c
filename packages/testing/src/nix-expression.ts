/** Renders a JSON-like value as a Nix expression, for writing fixture flakes from tests. */
export function toNixExpression(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new TypeError(`Nix fixtures take integers, not ${value}`);
    return String(value);
  }
  if (typeof value === 'string') return nixString(value);
  if (Array.isArray(value))
    return `[ ${value.map((item) => `(${toNixExpression(item)})`).join(' ')} ]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, inner]) => inner !== undefined)
      .map(([key, inner]) => `${nixString(key)} = ${toNixExpression(inner)};`);
    return `{ ${entries.join(' ')} }`;
  }
  throw new TypeError(`cannot render ${typeof value} as Nix`);
}

function nixString(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$\{/g, '\\${')}"`;
}
