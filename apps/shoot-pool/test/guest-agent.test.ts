// The guest agent's own Go tests (guest/agent/agent_test.go: framing, the golden frame the
// host's protocol test shares, exec, binds), run with the Go toolchain the guest image is
// built with, so the suite covers both sides of the protocol.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from '@jest/globals';

const AGENT_DIR = path.join(__dirname, '..', 'guest', 'agent');

/** Where scripts/guest-image looks for Go: $GO, `go` on PATH, then /usr/local/go. */
function goBinary(): string {
  if (process.env.GO !== undefined) return process.env.GO;
  const onPath = (process.env.PATH ?? '')
    .split(':')
    .map((dir) => path.join(dir, 'go'))
    .find((candidate) => existsSync(candidate));
  return onPath ?? '/usr/local/go/bin/go';
}

describe('the guest agent', () => {
  it('passes its Go tests', async () => {
    const { stdout } = await promisify(execFile)(goBinary(), ['test', '-count=1', './...'], {
      cwd: AGENT_DIR,
      maxBuffer: 16 << 20,
    }).catch((error: { stdout?: string; stderr?: string; message: string }) => {
      throw new Error(`go test failed:\n${error.stdout ?? ''}${error.stderr ?? error.message}`);
    });
    expect(stdout).toMatch(/^ok\s+seed\.loom\.farm\/shoot-agent/m);
  }, 180_000);
});
