// What `seed up` changes in examples/hello (whose files come from @seed/local-parts'
// exampleFlakeFiles, shared with the tests).

/** The instance `seed up` changes, and how: web grows from size s to m. */
export const CHANGED_INSTANCE = 'web';

export function resizeWeb(flake: string): string {
  const anchor = 'expose.http = 8080;';
  if (!flake.includes(anchor)) throw new Error(`examples/hello/flake.nix no longer has ${anchor}`);
  return flake.replace(anchor, `size = "m";\n          ${anchor}`);
}
