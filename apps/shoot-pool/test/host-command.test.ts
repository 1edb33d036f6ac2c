import { describe, expect, it } from '@jest/globals';
import { runHostCommand } from '../src/vm/host-command';

describe('host commands through long-lived shells', () => {
  it('answers the exit code and stderr, dropping stdout', async () => {
    expect(await runHostCommand(['sh', '-c', 'echo out; echo err >&2; exit 3'])).toEqual({
      code: 3,
      stderr: 'err',
    });
    expect(await runHostCommand(['true'])).toEqual({ code: 0, stderr: '' });
  });

  it('passes every argument as it is, quotes and shell characters included', async () => {
    const arg = `it's 100% $HOME; \`x\` "y" \\n`;
    expect(await runHostCommand(['sh', '-c', 'printf %s "$1" >&2', 'sh', arg])).toEqual({
      code: 0,
      stderr: arg,
    });
  });

  it('answers 127 for a command that is not there', async () => {
    expect((await runHostCommand(['no-such-command-here'])).code).toBe(127);
  });

  it('kills a command at its deadline (124), and the next command still runs', async () => {
    const started = Date.now();
    expect(await runHostCommand(['sleep', '30'], 300)).toMatchObject({ code: 124 });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((await runHostCommand(['true'])).code).toBe(0);
  });

  it('gives a command no stdin to wait on', async () => {
    expect(await runHostCommand(['cat'], 5_000)).toEqual({ code: 0, stderr: '' });
  });

  it('runs more commands at once than it keeps shells for', async () => {
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, index) =>
        runHostCommand(['sh', '-c', `sleep 0.2; echo ${index} >&2`]),
      ),
    );
    expect(results.map((result) => result.stderr)).toEqual(
      Array.from({ length: 10 }, (_, index) => String(index)),
    );
  });

  it('refuses an empty argv and a NUL in an argument', async () => {
    await expect(runHostCommand([])).rejects.toThrow('needs argv');
    await expect(runHostCommand(['echo', 'a\0b'])).rejects.toThrow('NUL');
  });
});
