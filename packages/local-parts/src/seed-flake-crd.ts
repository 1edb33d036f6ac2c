import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse } from 'yaml';
import type { KubeApiServer } from './kube-apiserver';
import { kubeApply, kubeRequest } from './node/kube-requests';

/** The SeedFlake CRD as deploy/ ships it. */
export const SEED_FLAKE_CRD = path.resolve(
  __dirname,
  '../../../deploy/manifests/seedflake-crd.yaml',
);

const CRDS = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';

/**
 * Installs deploy/'s SeedFlake CRD (server-side apply of the very file) and waits until
 * the API server serves the resource.
 */
export async function installSeedFlakeCrd(
  api: Pick<KubeApiServer, 'url' | 'token' | 'caCert'>,
): Promise<void> {
  const crd = parse(await readFile(SEED_FLAKE_CRD, 'utf8')) as { metadata: { name: string } };
  await kubeApply(api, CRDS, crd);
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(100)) {
    const served = (await kubeRequest(api, 'GET', `${CRDS}/${crd.metadata.name}`)).body as {
      status?: { conditions?: { type: string; status: string }[] };
    };
    const established = served.status?.conditions?.some(
      (condition) => condition.type === 'Established' && condition.status === 'True',
    );
    if (established) return;
  }
  throw new Error('the SeedFlake CRD did not become Established within 30 s');
}
