import { describe, expect, it } from '@jest/globals';
import { CleanupStack } from '../src/vm/cleanup-stack';

describe('CleanupStack', () => {
  it('undoes newest first, once, past failures', async () => {
    const stack = new CleanupStack();
    const done: string[] = [];
    await stack.push('files', () => void done.push('files'));
    await stack.push('binds', () => {
      throw new Error('busy');
    });
    await stack.push('vmm', async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      done.push('vmm');
    });
    expect(stack.labels).toEqual(['files', 'binds', 'vmm']);

    const [first, second] = await Promise.all([stack.run(), stack.run()]);
    expect(done).toEqual(['vmm', 'files']);
    expect(first).toEqual([{ label: 'binds', error: new Error('busy') }]);
    expect(second).toBe(first);
    expect(stack.ran).toBe(true);
    await stack.run();
    expect(done).toEqual(['vmm', 'files']);
  });

  it('undoes a resource registered after the stack ran at once', async () => {
    const stack = new CleanupStack();
    await stack.run();
    const done: string[] = [];
    expect(await stack.push('late', () => void done.push('late'))).toBeUndefined();
    expect(done).toEqual(['late']);
    const failure = await stack.push('late failing', () => Promise.reject(new Error('x')));
    expect(failure?.label).toBe('late failing');
  });
});
