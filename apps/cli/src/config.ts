import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { tlsDirectorySchema, type TlsDirectory } from '@seed/contracts';
import { localNix, type LocalNix } from '@seed/nix-eval';
import { z } from 'zod';
import { KubeCallError } from './logs/instance-logs';

const httpUrl = (fallback: string) =>
  z
    .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
    .default(fallback)
    .transform((url) => url.replace(/\/+$/, ''));

const envSchema = z.object({
  // The services' own default addresses, so the commands work beside a local stack.
  SEED_BUILDER_URL: httpUrl('http://127.0.0.1:8081'),
  SEED_RECONCILER_ADDRESS: z
    .string()
    .regex(/^[^\s/:]+:\d{1,5}$/, { error: 'must be host:port' })
    .default('127.0.0.1:9090'),
  SEED_SHOOT_URL: httpUrl('http://127.0.0.1:7070'),
  // The operator's credentials; checked here, required only by the commands that call.
  SEED_TLS_DIR: tlsDirectorySchema.optional(),
  SEED_BUILDER_API_TOKEN_FILE: z
    .string()
    .transform((file, ctx) => {
      try {
        const token = readFileSync(file, 'utf8').trim();
        if (token !== '') return token;
        ctx.addIssue({ code: 'custom', message: `${file} is empty` });
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
      }
      return z.NEVER;
    })
    .optional(),
  // Set in instances with shoots enabled: the pod's token the shoot pool checks.
  SEED_SHOOT_TOKEN_FILE: z.string().min(1).optional(),
});

export interface CliConfig {
  nix: LocalNix;
  builderUrl: string;
  /** The builder API's bearer token (`SEED_BUILDER_API_TOKEN_FILE`). */
  builderToken?: string;
  reconcilerAddress: string;
  /** The operator's client certificate for the reconciler (`SEED_TLS_DIR`). */
  operatorTls?: TlsDirectory;
  shootUrl: string;
  shootTokenFile?: string;
}

/** Reads the CLI's environment: where the services are, and which nix `seed inspect` runs. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): CliConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`);
    throw new Error(`invalid environment: ${problems.join('; ')}`);
  }
  const vars = parsed.data;
  return {
    nix: localNix(env),
    builderUrl: vars.SEED_BUILDER_URL,
    builderToken: vars.SEED_BUILDER_API_TOKEN_FILE,
    reconcilerAddress: vars.SEED_RECONCILER_ADDRESS,
    operatorTls: vars.SEED_TLS_DIR,
    shootUrl: vars.SEED_SHOOT_URL,
    shootTokenFile: vars.SEED_SHOOT_TOKEN_FILE,
  };
}

/** How `seed logs` reaches the Kubernetes API server. */
export type KubeAccess = { kind: 'files'; files: string[] } | { kind: 'in-cluster' };

const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/**
 * The kubeconfig the way kubectl finds it: `--kubeconfig FILE`, else `$KUBECONFIG` (a
 * list, missing files skipped), else `~/.kube/config`, else the pod's service account
 * in a cluster. Checked before anything is asked, so a missing file is named at once
 * instead of surfacing as a refused connection to localhost:8080.
 */
export function resolveKubeAccess(
  option: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): KubeAccess {
  if (option !== undefined) {
    if (!existsSync(option)) throw new Error(`--kubeconfig ${option}: no such file`);
    return { kind: 'files', files: [option] };
  }
  if (env.KUBECONFIG) {
    const listed = env.KUBECONFIG.split(path.delimiter).filter((file) => file);
    const files = listed.filter((file) => existsSync(file));
    if (files.length === 0)
      throw new Error(`KUBECONFIG names no file that exists (${listed.join(', ')})`);
    return { kind: 'files', files };
  }
  const home = path.join(env.HOME ?? homedir(), '.kube', 'config');
  if (existsSync(home)) return { kind: 'files', files: [home] };
  if (env.KUBERNETES_SERVICE_HOST && existsSync(IN_CLUSTER_TOKEN)) return { kind: 'in-cluster' };
  throw new Error(
    'no Kubernetes access: pass --kubeconfig FILE or set KUBECONFIG (seed up --keep prints one)',
  );
}

/** The kubeconfig files (merged, the first one's context current), or in-cluster. */
export function loadKubeAccess(access: KubeAccess): KubeConfig {
  const config = new KubeConfig();
  if (access.kind === 'in-cluster') {
    config.loadFromCluster();
    return config;
  }
  const [first, ...rest] = access.files;
  try {
    config.loadFromFile(first!);
    for (const file of rest) {
      const more = new KubeConfig();
      more.loadFromFile(file);
      config.mergeConfig(more, true);
    }
  } catch (error) {
    throw new KubeCallError(
      `cannot load the kubeconfig ${access.files.join(', ')}: ${(error as Error).message}`,
    );
  }
  if (!config.getCurrentCluster())
    throw new KubeCallError(
      `the kubeconfig ${access.files.join(', ')} has no current context with a cluster`,
    );
  return config;
}
