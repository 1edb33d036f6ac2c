import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { buildScript, cachedBuild } from './cached-build';

/** scripts/qemu: builds QEMU for the pool's microVMs (and why), or finds it cached. */
const QEMU_SCRIPT = buildScript('qemu');
/** A cold build fetches Debian's source and compiles QEMU (~2 min on two idle cores). */
const BUILD_TIMEOUT_MS = 30 * 60_000;

/**
 * The qemu-system-x86_64 the pool runs: `binary` when given (SEED_QEMU_BINARY; Debian's
 * own would do, slower to start), else the one scripts/qemu builds.
 */
export async function findQemu(binary?: string): Promise<string> {
  const qemu =
    binary ?? path.join(await cachedBuild(QEMU_SCRIPT, BUILD_TIMEOUT_MS), 'bin/qemu-system-x86_64');
  await access(qemu, constants.X_OK).catch(() => {
    throw new Error(`QEMU ${qemu} is missing or not executable`);
  });
  return qemu;
}
