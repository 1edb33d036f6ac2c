import path from 'node:path';
import { SHOOT_LIMITS } from '@seed/contracts';
import {
  ConfigError,
  envVar,
  parseEnv,
  storeGcEnv,
  storeGcTiming,
  type StoreGcTiming,
  type TokenFile,
} from '@seed/service-kit';
import { z } from 'zod';
import { StaticCallerResolver } from './caller/caller';
import type { HypervisorChoice } from './vm/select-hypervisor';
import { DEFAULT_VM_UIDS, parseUidRange } from './vm/vm-uids';

const HYPERVISORS = ['qemu', 'cloud-hypervisor'] as const;

const envSchema = z
  .object({
    SEED_SHOOT_HOST: z.string().min(1).default('0.0.0.0'),
    SEED_SHOOT_PORT: envVar.port(7070),
    SEED_SHOOT_GRPC_PORT: envVar.port(7071),
    SEED_SHOOT_STATUS_TOKEN_FILE: envVar.tokenFile(),
    SEED_SHOOT_BODY_LIMIT_BYTES: envVar.positiveInt(4 * 1024 * 1024),
    SEED_SHOOT_POOL_SIZE: envVar.positiveInt(2),
    SEED_SHOOT_QUEUE_BOUND: z.coerce.number().int().min(0).default(16),
    SEED_SHOOT_PER_CALLER_LIMIT: envVar.positiveInt(4),
    SEED_SHOOT_QUEUE_TIMEOUT_MS: envVar.positiveInt(30_000),
    SEED_SHOOT_MEMORY_MIB: z.coerce.number().int().min(64).max(65536).default(256),
    SEED_SHOOT_VCPUS: z.coerce.number().int().min(1).max(64).default(1),
    SEED_SHOOT_MAX_OUTPUT_BYTES: z.coerce
      .number()
      .int()
      .min(1)
      .max(SHOOT_LIMITS.maxOutputBytesCeiling)
      .default(1 << 20),
    SEED_SHOOT_MAX_STDIN_BYTES: z.coerce
      .number()
      .int()
      .min(1)
      .max(SHOOT_LIMITS.maxStdinBytesCeiling)
      .default(1 << 20),
    SEED_SHOOT_RUN_ROOT: z.string().startsWith('/').default('/run/seed/shoot-pool'),
    SEED_HYPERVISOR: z
      .enum(HYPERVISORS, { error: `expected ${HYPERVISORS.join(' or ')}` })
      .default('qemu'),
    SEED_SHOOT_ACCEL: z.enum(['auto', 'kvm', 'tcg']).optional(),
    SEED_SHOOT_VM_UIDS: z
      .string()
      .default(`${DEFAULT_VM_UIDS.first}-${DEFAULT_VM_UIDS.first + DEFAULT_VM_UIDS.count - 1}`)
      .transform((text, context) => {
        try {
          return parseUidRange(text);
        } catch (error) {
          context.addIssue({ code: 'custom', message: (error as Error).message });
          return z.NEVER;
        }
      }),
    // Unset: the QEMU scripts/qemu builds (it says why not Debian's).
    SEED_QEMU_BINARY: z.string().startsWith('/').optional(),
    SEED_CLOUD_HYPERVISOR_BINARY: z.string().min(1).default('cloud-hypervisor'),
    SEED_VIRTIOFSD_BINARY: z.string().min(1).default('/usr/libexec/virtiofsd'),
    SEED_SHOOT_STORE_DIR: z.string().startsWith('/').default('/nix/store'),
    // The node's nix-daemon, which collects the node's store with its own view of every
    // root; unset: this pool never collects (a development machine's store is its own).
    SEED_GC_NIX_STORE: z
      .string()
      .regex(/^(unix:\/\/\/\S+|daemon)$/, {
        error: "expected the node's nix-daemon: unix:///<socket> or daemon",
      })
      .optional(),
    SEED_NIX_BIN: z.string().min(1).default('nix'),
    ...storeGcEnv(),
    SEED_SHOOT_VIEW_IDLE_SECONDS: envVar.positiveInt(600),
    SEED_GUEST_DIR: z.string().startsWith('/').optional(),
    SEED_SHOOT_LOCAL_CALLER: z.string().min(1).optional(),
    SEED_KUBECONFIG: z.string().min(1).optional(),
    SEED_NODE_NAME: z.string().min(1).optional(),
    SEED_TPM_ROOT: z.string().startsWith('/').optional(),
    SEED_TPM_SWTPM: z.string().min(1).default('swtpm'),
    SEED_TPM_GRACE_SECONDS: envVar.positiveInt(7 * 24 * 3600),
    SEED_TPM_SYNC_SECONDS: envVar.positiveInt(5),
    SEED_TPM_IDENTITY_PROGRAM: z.string().startsWith('/').optional(),
    SEED_LOG_LEVEL: envVar.logLevel(),
  })
  // SEED_SHOOT_ACCEL picks QEMU's accelerator; Cloud Hypervisor has only KVM.
  .superRefine((vars, context) => {
    const accel = vars.SEED_SHOOT_ACCEL;
    if (vars.SEED_HYPERVISOR === 'cloud-hypervisor' && accel !== undefined && accel !== 'kvm') {
      context.addIssue({
        code: 'custom',
        path: ['SEED_SHOOT_ACCEL'],
        message:
          'Cloud Hypervisor (SEED_HYPERVISOR=cloud-hypervisor) runs only under KVM: leave it unset, or set SEED_HYPERVISOR=qemu',
      });
    }
  });

/** Where callers come from: the Kubernetes API, or a fixed local map (development only). */
export type CallerSource =
  | { kind: 'kube'; kubeconfig?: string; storeDir: string; nodeName: string }
  | { kind: 'static'; resolver: StaticCallerResolver };

export interface ShootPoolConfig {
  /** Shoots, `/status`, probes and metrics. */
  http: { host: string; port: number; bodyLimitBytes: number };
  /** Shoots and `Status` over gRPC. */
  grpc: { host: string; port: number };
  /** Guards the pool's status (HTTP `/status`, gRPC `Status`); shoots carry their caller's token. */
  statusToken: TokenFile;
  pool: {
    size: number;
    queueBound: number;
    perCallerLimit: number;
    queueTimeoutMs: number;
    memoryMiB: number;
    vcpus: number;
    /** The store bound into every clone while it warms (see PoolOptions.store). */
    store?: string;
  };
  limits: { maxOutputBytes: number; maxStdinBytes: number };
  runRoot: string;
  /** The node's store, where callers' image closures are looked up (SEED_SHOOT_STORE_DIR). */
  storeDir: string;
  /** How long an image's closure view outlives its last shoot. */
  viewIdleMs: number;
  /** Garbage collection of the node's store (NodeStoreGc); unset: never. */
  gc?: StoreGcTiming & { nixStore: string; nixBinary: string };
  hypervisor: HypervisorChoice;
  /** The guest kernel + initramfs folder; unset: `scripts/guest-image` builds or finds it. */
  guestDir?: string;
  callers: CallerSource;
  /** The node's TPM agent (docs/secrets.md); unset: this node serves no TPMs. */
  tpm?: TpmAgentConfig;
  logLevel: string;
}

/** One swtpm per instance that wants a TPM and runs on this node (@seed/vtpm). */
export interface TpmAgentConfig {
  /** Holds each instance's TPM state and control socket; a hostPath Kata's QEMU reaches. */
  root: string;
  swtpm: string;
  /** How long a TPM outlives its request (its instance left the flake). */
  graceMs: number;
  /** How often every request is looked at again. */
  syncMs: number;
  /**
   * `seed-secrets` (nix/secrets/seed-secrets.sh): creates each new TPM's identity before
   * any VM has it and records its recipient (`seed keys`); unset: none is recorded.
   */
  identityProgram?: string;
  nodeName: string;
  kubeconfig?: string;
}

/** Reads and checks the whole configuration before anything starts. */
export function loadShootPoolConfig(env: NodeJS.ProcessEnv = process.env): ShootPoolConfig {
  const vars = parseEnv(envSchema, env);
  const hypervisor = hypervisorOf(vars);
  let callers: CallerSource;
  if (vars.SEED_SHOOT_LOCAL_CALLER !== undefined) {
    if (vars.SEED_KUBECONFIG !== undefined) {
      throw new ConfigError([
        'SEED_SHOOT_LOCAL_CALLER and SEED_KUBECONFIG: give one of them, not both',
      ]);
    }
    try {
      callers = {
        kind: 'static',
        resolver: StaticCallerResolver.fromJson(vars.SEED_SHOOT_LOCAL_CALLER),
      };
    } catch (error) {
      throw new ConfigError([`SEED_SHOOT_LOCAL_CALLER: ${(error as Error).message}`]);
    }
  } else {
    if (vars.SEED_NODE_NAME === undefined) {
      throw new ConfigError([
        "SEED_NODE_NAME: required with Kubernetes callers (the node this pool serves; callers must run on it: the downward API's spec.nodeName)",
      ]);
    }
    callers = {
      kind: 'kube',
      kubeconfig: vars.SEED_KUBECONFIG,
      storeDir: vars.SEED_SHOOT_STORE_DIR,
      nodeName: vars.SEED_NODE_NAME,
    };
  }
  let tpm: TpmAgentConfig | undefined;
  if (vars.SEED_TPM_ROOT !== undefined) {
    if (callers.kind !== 'kube') {
      throw new ConfigError([
        'SEED_TPM_ROOT: the TPM agent takes its requests from Kubernetes; unset it with SEED_SHOOT_LOCAL_CALLER',
      ]);
    }
    tpm = {
      root: path.resolve(vars.SEED_TPM_ROOT),
      swtpm: vars.SEED_TPM_SWTPM,
      graceMs: vars.SEED_TPM_GRACE_SECONDS * 1000,
      syncMs: vars.SEED_TPM_SYNC_SECONDS * 1000,
      identityProgram: vars.SEED_TPM_IDENTITY_PROGRAM,
      nodeName: callers.nodeName,
      kubeconfig: callers.kubeconfig,
    };
  }
  return {
    http: {
      host: vars.SEED_SHOOT_HOST,
      port: vars.SEED_SHOOT_PORT,
      bodyLimitBytes: vars.SEED_SHOOT_BODY_LIMIT_BYTES,
    },
    grpc: { host: vars.SEED_SHOOT_HOST, port: vars.SEED_SHOOT_GRPC_PORT },
    gc:
      vars.SEED_GC_NIX_STORE === undefined
        ? undefined
        : {
            nixStore: vars.SEED_GC_NIX_STORE,
            nixBinary: vars.SEED_NIX_BIN,
            ...storeGcTiming(vars),
          },
    statusToken: vars.SEED_SHOOT_STATUS_TOKEN_FILE,
    pool: {
      size: vars.SEED_SHOOT_POOL_SIZE,
      queueBound: vars.SEED_SHOOT_QUEUE_BOUND,
      perCallerLimit: vars.SEED_SHOOT_PER_CALLER_LIMIT,
      queueTimeoutMs: vars.SEED_SHOOT_QUEUE_TIMEOUT_MS,
      memoryMiB: vars.SEED_SHOOT_MEMORY_MIB,
      vcpus: vars.SEED_SHOOT_VCPUS,
      // Kubernetes callers each get their image's closure, never the whole store; a local
      // caller without an image the store folder it names.
      store: callers.kind === 'kube' ? undefined : callers.resolver.firstStore(),
    },
    limits: {
      maxOutputBytes: vars.SEED_SHOOT_MAX_OUTPUT_BYTES,
      maxStdinBytes: vars.SEED_SHOOT_MAX_STDIN_BYTES,
    },
    runRoot: path.resolve(vars.SEED_SHOOT_RUN_ROOT),
    storeDir: vars.SEED_SHOOT_STORE_DIR,
    viewIdleMs: vars.SEED_SHOOT_VIEW_IDLE_SECONDS * 1000,
    hypervisor,
    guestDir: vars.SEED_GUEST_DIR,
    callers,
    tpm,
    logLevel: vars.SEED_LOG_LEVEL,
  };
}

function hypervisorOf(vars: z.infer<typeof envSchema>): HypervisorChoice {
  return vars.SEED_HYPERVISOR === 'qemu'
    ? {
        kind: 'qemu',
        accel: vars.SEED_SHOOT_ACCEL ?? 'auto',
        vmUids: vars.SEED_SHOOT_VM_UIDS,
        binary: vars.SEED_QEMU_BINARY,
      }
    : {
        kind: 'cloud-hypervisor',
        binary: vars.SEED_CLOUD_HYPERVISOR_BINARY,
        virtiofsdBinary: vars.SEED_VIRTIOFSD_BINARY,
        vmUids: vars.SEED_SHOOT_VM_UIDS,
      };
}
