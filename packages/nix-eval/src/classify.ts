import { NixError } from './errors';

/** What nix was doing when it failed: the same words mean different things per phase. */
export type NixPhase = 'resolve' | 'evaluate' | 'build' | 'publish' | 'collect';

const STORE_SOURCE_PREFIX = /\/nix\/store\/[0-9a-z]{32}-[^/:]+\//g;
const LOCATION = /^\s*at (\S+):(\d+):(\d+):\s*$/m;
const BUILDER_FAILED = /builder for '(\/nix\/store\/[^']+\.drv)' failed with exit code (\d+)/;
const DEPENDENCY_FAILED =
  /(\d+) dependencies of derivation '(\/nix\/store\/[^']+\.drv)' failed to build/;
const UNKNOWN_REVISION =
  /Cannot find Git revision|unknown revision|does not contain commit|couldn't find remote ref|No commit found/i;
const UNREACHABLE =
  /does not appear to be a git repository|Could not read from remote repository|unable to download|Could not resolve host|Connection refused|Failed to connect|unable to access|getting status of .*: No such file or directory|repository .* not found|HTTP error 404/i;

/** The `error: ...` message, without nix's hint lines, as one paragraph. */
function errorMessage(stderr: string): string {
  const start = stderr.lastIndexOf('error: ');
  const text = start === -1 ? stderr : stderr.slice(start + 'error: '.length);
  const paragraph = text.split(/\n\s*\n/)[0] ?? text;
  return paragraph
    .split('\n')
    .filter((line) => !line.startsWith("(use '--show-trace'"))
    .map((line) => line.trim())
    .join(' ')
    .replace(STORE_SOURCE_PREFIX, '')
    .trim();
}

/** The first source location nix printed, relative to the flake's root. */
function sourceLocation(stderr: string): string | undefined {
  const match = LOCATION.exec(stderr);
  if (!match) return undefined;
  return `${match[1]!.replace(STORE_SOURCE_PREFIX, '')}:${match[2]}:${match[3]}`;
}

/** The `> ` lines nix prints from the failing builder's log. */
function builderLogTail(stderr: string, derivation: string): string[] {
  const at = stderr.indexOf(`builder for '${derivation}'`);
  const lines: string[] = [];
  for (const line of stderr.slice(at).split('\n').slice(1)) {
    const logLine = /^\s*> ?(.*)$/.exec(line);
    if (logLine) lines.push(logLine[1]!);
    else if (lines.length > 0 || /For full logs/.test(line)) break;
  }
  return lines;
}

/** Turns the stderr of a nix command that exited non-zero into a typed error. */
export function classifyNixFailure(phase: NixPhase, exitCode: number, stderr: string): NixError {
  const trimmed = stderr.slice(-16 * 1024);
  const built = BUILDER_FAILED.exec(stderr);
  if (built) {
    const derivation = built[1]!;
    return new NixError('build', `builder for ${derivation} failed with exit code ${built[2]}`, {
      derivation,
      logTail: builderLogTail(stderr, derivation),
      stderr: trimmed,
    });
  }
  const dependency = DEPENDENCY_FAILED.exec(stderr);
  if (dependency) {
    return new NixError('build', errorMessage(stderr), {
      derivation: dependency[2],
      stderr: trimmed,
    });
  }
  // A nix killed by a signal (by the OOM killer, an operator) printed no error of its own.
  const message =
    (stderr.includes('error: ') ? errorMessage(stderr) : '') ||
    (exitCode > 128
      ? `nix was killed by signal ${exitCode - 128}`
      : errorMessage(stderr) || `nix exited with code ${exitCode}`);
  // Copying to or signing a cache, collecting garbage: a full disk, an unreadable key, a
  // missing path. Nothing the flake did; another attempt may find it fixed.
  if (phase === 'publish' || phase === 'collect')
    return new NixError('nix', message, { stderr: trimmed });
  if (UNKNOWN_REVISION.test(stderr)) {
    return new NixError('fetch', message, { retryable: false, stderr: trimmed });
  }
  if (UNREACHABLE.test(stderr) && phase !== 'build') {
    return new NixError('fetch', message, { retryable: true, stderr: trimmed });
  }
  if (phase === 'build') {
    return new NixError('nix', message, { stderr: trimmed });
  }
  // Seed's meta function names the failing option first: that is a user's validation error.
  const kind = /^seed\.[A-Za-z0-9_.-]+: /.test(message) ? 'validation' : 'evaluation';
  return new NixError(kind, message, { location: sourceLocation(stderr), stderr: trimmed });
}
