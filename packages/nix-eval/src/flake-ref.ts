import { GITHUB_FLAKE_REF, InvalidFlakeRef, parseFlakeRef, type FlakeRef } from '@seed/contracts';
import { NixError } from './errors';

const GIT_REVISION = /^[0-9a-f]{40}$/;

function invalid(reference: string, why: string): NixError {
  return new NixError('invalid-reference', `flake reference "${reference}": ${why}`);
}

/**
 * `parseFlakeRef` of `@seed/contracts` with its refusal as a NixError, so callers of the
 * nix client see one error type whatever stopped the run.
 */
export function checkedFlakeRef(reference: string): FlakeRef {
  try {
    return parseFlakeRef(reference);
  } catch (error) {
    if (error instanceof InvalidFlakeRef) throw new NixError('invalid-reference', error.message);
    throw error;
  }
}

/**
 * The reference of one commit of a flake, as the builder evaluates it. `branch` lets nix
 * find a commit that is not on the repository's default branch.
 */
export function pinFlakeRef(reference: string, revision: string, branch?: string): FlakeRef {
  const flake = checkedFlakeRef(reference);
  if (!GIT_REVISION.test(revision)) {
    throw invalid(reference, `revision "${revision}" is not a 40-digit git commit id`);
  }
  if (flake.scheme === 'github:') {
    const [, owner, repo, , query = ''] = GITHUB_FLAKE_REF.exec(flake.url) ?? [];
    return { scheme: flake.scheme, url: `github:${owner}/${repo}/${revision}${query}` };
  }
  if (flake.scheme === 'path:' || flake.scheme === 'tarball+https://') {
    throw invalid(reference, `${flake.scheme} references cannot be pinned to a git revision`);
  }
  const [base = '', query = ''] = splitQuery(flake.url);
  const params = new URLSearchParams(query);
  params.set('rev', revision);
  if (branch !== undefined) params.set('ref', branch);
  return checkedFlakeRef(`${base}?${params.toString()}`);
}

function splitQuery(url: string): [string, string] {
  const at = url.indexOf('?');
  return at === -1 ? [url, ''] : [url.slice(0, at), url.slice(at + 1)];
}
