import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { InvalidInstance, VtpmStore, runningSwtpm, stopSwtpm, type InstanceKey } from '../src';

// Real swtpm (Debian's), read with real tpm2-tools over its host data socket
// (test/secrets-vm.test.ts attaches the TPMs to VMs instead).
const GRACE_MS = 60_000;
const web: InstanceKey = { namespace: 's-gaydazldmnsg', name: 'web' };
const db: InstanceKey = { namespace: 's-gaydazldmnsg', name: 'db' };
const NV_INDEX = '0x1500016';

let root: string;
let clock: number;
const store = (): VtpmStore =>
  new VtpmStore({ root, swtpm: 'swtpm', graceMs: GRACE_MS, now: () => clock, hostChannel: true });

function tpm2(store: VtpmStore, instance: InstanceKey, args: string[], input?: string): string {
  return execFileSync(`tpm2_${args[0]}`, args.slice(1), {
    env: { ...process.env, TPM2TOOLS_TCTI: `swtpm:path=${store.paths(instance).data}` },
    input,
    encoding: 'utf8',
  });
}

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'vtpm-'));
  clock = 1_000_000;
});

afterEach(async () => {
  await store().stopAll();
  await rm(root, { recursive: true, force: true });
});

describe('a TPM per instance', () => {
  it('starts one swtpm per instance, its state where only the agent can read', async () => {
    const agent = store();
    const first = await agent.ensure(web);
    const second = await agent.ensure(db);
    expect(first.how).toBe('started');
    expect(first.pid).not.toBe(second.pid);
    expect(first.ctrlSocket).toBe(path.join(root, 's-gaydazldmnsg_web', 'tpm.sock.ctrl'));
    expect(statSync(agent.paths(web).dir).mode & 0o777).toBe(0o700);
    expect(statSync(agent.paths(web).state).mode & 0o777).toBe(0o700);
    expect(tpm2(agent, web, ['getrandom', '--hex', '8'])).toMatch(/^[0-9a-f]{16}$/);
  });

  it('adopts a running TPM after the agent restarts, its state unchanged', async () => {
    const before = store();
    const started = await before.ensure(web);
    tpm2(before, web, ['nvdefine', NV_INDEX, '-C', 'o', '-s', '32', '-a', 'ownerread|ownerwrite']);
    tpm2(before, web, ['nvwrite', NV_INDEX, '-C', 'o', '-i', '-'], 'kept across restarts');

    // A new agent (no memory of the old one's processes) finds the same swtpm.
    const after = store();
    const adopted = await after.ensure(web);
    expect(adopted).toMatchObject({ how: 'adopted', pid: started.pid });
    expect(tpm2(after, web, ['nvread', NV_INDEX, '-C', 'o', '-s', '20'])).toBe(
      'kept across restarts',
    );
  });

  it('restarts a stopped TPM from its state: the same TPM, not a new one', async () => {
    const agent = store();
    const started = await agent.ensure(web);
    tpm2(agent, web, ['nvdefine', NV_INDEX, '-C', 'o', '-s', '8', '-a', 'ownerread|ownerwrite']);
    tpm2(agent, web, ['nvwrite', NV_INDEX, '-C', 'o', '-i', '-'], 'survives');
    // As after a node reboot: the process is gone, the state is not.
    await stopSwtpm(started.pid);
    const restarted = await agent.ensure(web);
    expect(restarted.how).toBe('started');
    expect(restarted.pid).not.toBe(started.pid);
    expect(tpm2(agent, web, ['nvread', NV_INDEX, '-C', 'o', '-s', '8'])).toBe('survives');
  });

  it('removes a TPM only after its instance has been gone for the grace period', async () => {
    const agent = store();
    await agent.reconcile([web, db]);
    const dbDir = agent.paths(db).dir;
    const dbPid = await runningSwtpm(agent.paths(db));

    expect(await agent.reconcile([web])).toMatchObject({ removed: [] });
    clock += GRACE_MS - 1;
    expect(await agent.reconcile([web])).toMatchObject({ removed: [] });
    expect(await runningSwtpm(agent.paths(db))).toBe(dbPid);

    clock += 1;
    expect(await agent.reconcile([web])).toMatchObject({ removed: [db] });
    expect(existsSync(dbDir)).toBe(false);
    expect(await agent.list()).toEqual([web]);
  });

  it('an instance back within the grace period keeps its TPM, and its clock restarts', async () => {
    const agent = store();
    const first = await agent.ensure(db);
    await agent.reconcile([]);
    clock += GRACE_MS - 1;
    const back = await agent.reconcile([db]);
    expect(back.ready[0]).toMatchObject({ how: 'adopted', pid: first.pid });
    // Missed again later: the grace period counts from this absence, not the first.
    clock += 10;
    expect(await agent.reconcile([])).toMatchObject({ removed: [] });
    clock += GRACE_MS - 1;
    expect(await agent.reconcile([])).toMatchObject({ removed: [] });
  });

  it('stops every TPM with its state kept, as when the host stops the agent for good', async () => {
    const agent = store();
    await agent.ensure(web);
    await agent.ensure(db);
    tpm2(agent, web, ['nvdefine', NV_INDEX, '-C', 'o', '-s', '32', '-a', 'ownerread|ownerwrite']);
    await agent.stopAll();
    expect(await runningSwtpm(agent.paths(web))).toBeUndefined();
    expect(await runningSwtpm(agent.paths(db))).toBeUndefined();
    expect((await agent.ensure(web)).how).toBe('started');
    expect(tpm2(agent, web, ['nvreadpublic', NV_INDEX])).toContain(NV_INDEX);
  });

  it("attack: an instance name that would leave the TPMs' root is refused", () => {
    expect(() => store().paths({ namespace: '..', name: 'web' })).toThrow(InvalidInstance);
    expect(() => store().paths({ namespace: 's-a', name: 'x/../../etc' })).toThrow(
      /instance name "x\/..\/..\/etc" is not a DNS label/,
    );
  });

  it('says why when swtpm cannot start', async () => {
    const broken = new VtpmStore({
      root,
      swtpm: '/nonexistent/swtpm',
      graceMs: GRACE_MS,
      now: () => clock,
    });
    await expect(broken.ensure(web)).rejects.toThrow(/cannot run \/nonexistent\/swtpm/);
  });
});
