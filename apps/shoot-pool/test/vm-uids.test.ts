import { describe, expect, it } from '@jest/globals';
import { VmUids, parseUidRange, runAsVmUser } from '../src/vm/vm-uids';

describe('VM uids', () => {
  it('hands out each uid once, walking the range round', () => {
    const uids = new VmUids({ first: 5000, count: 3 });
    expect([uids.take(), uids.take()]).toEqual([5000, 5001]);
    uids.release(5000);
    // Not the one just freed: the walk goes on first.
    expect([uids.take(), uids.take()]).toEqual([5002, 5000]);
    expect(() => uids.take()).toThrow(/all 3 VM uids are in use/);
  });

  it('parses a range and refuses system uids and nonsense', () => {
    expect(parseUidRange('2100000000-2100065535')).toEqual({ first: 2_100_000_000, count: 65_536 });
    for (const bad of ['0-100', '5000', '6000-5000', '5000-4294967295', 'a-b']) {
      expect(() => parseUidRange(bad)).toThrow(/FIRST-LAST/);
    }
  });

  it('runs the VMM as the uid with only CAP_DAC_OVERRIDE and no_new_privs', () => {
    expect(runAsVmUser(5000, 'qemu', ['-M', 'microvm'])).toEqual([
      '--reuid=5000',
      '--regid=5000',
      '--clear-groups',
      '--no-new-privs',
      '--inh-caps=-all,+dac_override',
      '--ambient-caps=-all,+dac_override',
      '--bounding-set=-all,+dac_override',
      '--',
      'qemu',
      '-M',
      'microvm',
    ]);
  });
});
