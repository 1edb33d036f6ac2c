// The repository's build scripts (scripts/guest-image, scripts/qemu) build into a cache
// outside the repository and print the folder as the last line of stdout, at once when it
// is cached: the daemon and the tests run them to find what they need.
import { execFile } from 'node:child_process';
import path from 'node:path';

/** scripts/NAME, the same depth from src/vm and dist/vm. */
export function buildScript(name: string): string {
  return path.resolve(__dirname, '../../../../scripts', name);
}

/** Runs a build script; resolves to the folder it printed last. */
export function cachedBuild(script: string, timeoutMs: number): Promise<string> {
  const name = `scripts/${path.basename(script)}`;
  return new Promise((resolve, reject) => {
    execFile(
      script,
      [],
      { timeout: timeoutMs, maxBuffer: 16 << 20, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error !== null) {
          reject(new Error(`${name} failed: ${error.message}\n${stderr}`));
          return;
        }
        const folder = stdout.trim().split('\n').pop();
        if (folder === undefined || folder === '') reject(new Error(`${name} printed no folder`));
        else resolve(folder);
      },
    );
  });
}
