// Images for the tests that run pods on the real node: busybox and a folder of files,
// made into nix-snapshotter images from this machine's nix store.
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { addToStore, buildNixImage, NODE_BINARIES_SCRIPT } from '@seed/testing';

const run = promisify(execFile);

/**
 * The node's nix2container (scripts/node-binaries: built the first time, then cached).
 * Images are built before the node starts, so the node's lock is held no longer.
 */
export async function nodeNix2container(): Promise<string> {
  const { stdout } = await run(NODE_BINARIES_SCRIPT, [], { maxBuffer: 16 * 1024 * 1024 });
  return path.join(stdout.trim().split('\n').pop()!, 'nix2container');
}

/**
 * A nix-snapshotter image whose entrypoint is busybox `sh -c script`; `$BB` is busybox and
 * `$WWW` a folder holding `files`. Folders, as nix packages are: containerd cannot mount
 * a bare file's store path.
 */
export async function shellImage(
  nix2container: string,
  name: string,
  script: string,
  files: Record<string, string> = {},
): Promise<string> {
  const work = await mkdtemp(path.join(tmpdir(), 'seed-real-node-'));
  try {
    await mkdir(path.join(work, 'www'));
    await mkdir(path.join(work, 'busybox', 'bin'), { recursive: true });
    await copyFile('/bin/busybox', path.join(work, 'busybox', 'bin', 'busybox'));
    // A file in every folder: an empty folder's store path is the same for every image.
    await writeFile(path.join(work, 'www', '.image'), `${name}\n`);
    for (const [file, content] of Object.entries(files)) {
      await writeFile(path.join(work, 'www', file), content);
    }
    const busybox = await addToStore(path.join(work, 'busybox'));
    const www = await addToStore(path.join(work, 'www'));
    const bb = `${busybox}/bin/busybox`;
    return await buildNixImage(nix2container, `${name}-image.tar`, {
      closure: [busybox, www],
      config: {
        Entrypoint: [bb, 'sh', '-c', script],
        Env: [`BB=${bb}`, `WWW=${www}`],
      },
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
