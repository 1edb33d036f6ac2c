// Reads deploy/manifests: every YAML document of every file the kustomization lists.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';

export const DEPLOY_DIR = path.resolve(__dirname, '..');
export const REPO_ROOT = path.resolve(DEPLOY_DIR, '..');
export const MANIFESTS_DIR = path.join(DEPLOY_DIR, 'manifests');

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [key: string]: unknown };
  [key: string]: unknown;
}

/** The files of kustomization.yaml's `resources`, in order. */
export function manifestFiles(): string[] {
  const kustomization = parseYaml(path.join(MANIFESTS_DIR, 'kustomization.yaml'))[0] as {
    resources: string[];
  };
  return kustomization.resources.map((file) => path.join(MANIFESTS_DIR, file));
}

/** Every object of every manifest file, in apply order. */
export function loadManifests(): Manifest[] {
  return manifestFiles().flatMap((file) => parseYaml(file) as Manifest[]);
}

function parseYaml(file: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  return docs.flatMap((doc) => {
    if (doc.errors.length > 0) {
      throw new Error(`${file}: ${doc.errors.map((error) => error.message).join('; ')}`);
    }
    const value: unknown = doc.toJS();
    return value === null || value === undefined ? [] : [value];
  });
}
