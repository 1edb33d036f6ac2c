import { flakeUriDigest, instanceHash, type ExposeProtocol } from '@seed/contracts';
import { ModelError } from './errors';
import type { GenerationContext, SeedInstance } from './input';

/**
 * The one module that makes the names, labels and annotations of Seed's objects and
 * checks them against Kubernetes' rules, so a name the API server would refuse fails
 * while rendering, with the `seeds.<name>` field it came from, instead of half-way
 * through an apply.
 */

export const LABEL_MANAGED_BY = 'seed.loom.farm/managed-by';
export const MANAGED_BY_SEED = 'seed';
export const LABEL_INSTANCE = 'seed.loom.farm/instance';
export const ANNOTATION_INSTANCE_HASH = 'seed.loom.farm/instance-hash';
export const ANNOTATION_GENERATION = 'seed.loom.farm/generation';
export const ANNOTATION_FLAKE_URI = 'seed.loom.farm/flake-uri';
export const ANNOTATION_COMMIT = 'seed.loom.farm/commit';
/** The full sha256 of the flake URI: the namespace name keeps only about 30 bits of it. */
export const ANNOTATION_FLAKE_SHA256 = 'seed.loom.farm/flake-sha256';

export const ENV_NAMESPACE = 'SEED_NAMESPACE';
export const ENV_INSTANCE = 'SEED_INSTANCE';
export const ENV_NODE_IP = 'SEED_NODE_IP';
export const ENV_SHOOT_URL = 'SEED_SHOOT_URL';

interface NameRule {
  /** What the rule is called in an error: `a DNS-1123 label`. */
  kind: string;
  maxLength: number;
  pattern: RegExp;
  /** The pattern in words, for the error. */
  shape: string;
}

const DNS1123_LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';

const RULES = {
  // Namespaces, volume names, container names.
  dns1123Label: {
    kind: 'a DNS-1123 label',
    maxLength: 63,
    pattern: new RegExp(`^${DNS1123_LABEL}$`),
    shape: "lower-case letters, digits and '-', a letter or digit at both ends",
  },
  // Most object names: Deployments, PersistentVolumeClaims.
  dns1123Subdomain: {
    kind: 'a DNS-1123 subdomain',
    maxLength: 253,
    pattern: new RegExp(`^${DNS1123_LABEL}(\\.${DNS1123_LABEL})*$`),
    shape: "DNS-1123 labels joined by '.'",
  },
  // Service names: a DNS-1123 label that starts with a letter.
  dns1035Label: {
    kind: 'a DNS-1035 label',
    maxLength: 63,
    pattern: /^[a-z]([-a-z0-9]*[a-z0-9])?$/,
    shape: "lower-case letters, digits and '-', a letter first, a letter or digit last",
  },
  labelValue: {
    kind: 'a label value',
    maxLength: 63,
    pattern: /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/,
    shape: "letters, digits, '-', '_' and '.', a letter or digit at both ends",
  },
  // Container and Service port names (RFC 6335 service names).
  ianaServiceName: {
    kind: 'an IANA service name',
    maxLength: 15,
    pattern: /^(?!.*--)(?=.*[a-z])[a-z0-9]([-a-z0-9]*[a-z0-9])?$/,
    shape: "lower-case letters, digits and '-', at least one letter, no '--', no '-' at either end",
  },
  // Kubernetes accepts more, but these also survive a shell and systemd's EnvironmentFile=.
  envVarName: {
    kind: 'a portable environment variable name',
    maxLength: Number.POSITIVE_INFINITY,
    pattern: /^[A-Za-z_][A-Za-z0-9_]*$/,
    shape: "letters, digits and '_', not a digit first",
  },
} satisfies Record<string, NameRule>;

type RuleName = keyof typeof RULES;

/** Why `value` breaks the rule, or undefined when it does not. */
function breachOf(value: string, rule: NameRule): string | undefined {
  if (value.length > rule.maxLength) {
    return `is ${value.length} characters; ${rule.kind} has at most ${rule.maxLength}`;
  }
  if (!rule.pattern.test(value)) return `is not ${rule.kind} (${rule.shape})`;
  return undefined;
}

const follows = (rule: RuleName) => (value: string) => breachOf(value, RULES[rule]) === undefined;

export const isDns1123Label = follows('dns1123Label');
export const isDns1123Subdomain = follows('dns1123Subdomain');
export const isDns1035Label = follows('dns1035Label');
export const isLabelValue = follows('labelValue');
export const isIanaServiceName = follows('ianaServiceName');
export const isEnvVarName = follows('envVarName');

interface Origin {
  instance?: string;
  field: string;
}

/** Returns `value` when it follows the rule; throws a ModelError naming `origin` otherwise. */
function checked(value: string, rule: RuleName, role: string, origin: Origin): string {
  const breach = breachOf(value, RULES[rule]);
  if (breach !== undefined) {
    throw new ModelError({ ...origin, reason: `${role} "${value}" ${breach}` });
  }
  return value;
}

/** The flake's namespace, checked: a DNS-1123 label. */
export function namespaceName(namespace: string): string {
  return checked(namespace, 'dns1123Label', 'namespace', { field: 'namespace' });
}

/**
 * The name of an instance's Deployment, Service and container, and the value of its
 * instance label: the instance name itself, which must be a DNS-1035 label because it
 * names a Service.
 */
export function instanceObjectName(instance: string): string {
  return checked(instance, 'dns1035Label', 'instance name', { instance, field: 'name' });
}

/** The generation, checked: 12 hex digits, as `generationHash` makes it. */
export function checkGeneration(generation: string): string {
  if (generation === '') {
    throw new ModelError({ field: 'generation', reason: 'the generation is empty' });
  }
  if (!/^[0-9a-f]{12}$/.test(generation)) {
    throw new ModelError({
      field: 'generation',
      reason: `generation "${generation}" is not 12 hex digits`,
    });
  }
  return generation;
}

/**
 * `seed.<purpose>`: an object of the whole flake (a NetworkPolicy, its ResourceQuota). The
 * `.` keeps it apart from the instances' own objects, named after them: no instance name
 * can hold one.
 */
export function flakeObjectName(purpose: string, kind: string): string {
  return checked(`seed.${purpose}`, 'dns1123Subdomain', kind, { field: 'name' });
}

/** `seed-<instance>-<key>`: the PersistentVolumeClaim of `seed.storage.<key>`. */
export function pvcName(instance: string, storageKey: string): string {
  return checked(`seed-${instance}-${storageKey}`, 'dns1123Subdomain', 'PersistentVolumeClaim', {
    instance,
    field: `meta.storage.${storageKey}`,
  });
}

/**
 * The pod volume of `seed.storage.<key>`: the key itself. The pod has no other volumes
 * for it to clash with, and a prefix would cut into the 63 characters volume names and
 * storage keys share.
 */
export function storageVolumeName(instance: string, storageKey: string): string {
  return checked(storageKey, 'dns1123Label', 'volume name', {
    instance,
    field: `meta.storage.${storageKey}`,
  });
}

/**
 * The container and Service port name of `seed.expose.<key>` on one transport: the key,
 * or `<key>-tcp` / `<key>-udp` for `dns`, which is served on both.
 */
export function exposePortName(
  instance: string,
  exposeKey: string,
  protocol: ExposeProtocol,
  transport: 'TCP' | 'UDP',
): string {
  const name = protocol === 'dns' ? `${exposeKey}-${transport.toLowerCase()}` : exposeKey;
  return checked(name, 'ianaServiceName', 'port name', {
    instance,
    field: `meta.expose.${exposeKey}`,
  });
}

/**
 * The variables of `seed.connect.<key>`: `SEED_<KEY>_HOST` and `SEED_<KEY>_PORT`,
 * upper-cased with `-` → `_`. Keys must be lower-case DNS-1035 labels, which keeps the
 * mapping one-to-one (`db` and `DB` would otherwise share a variable).
 */
export function connectEnvNames(
  instance: string,
  connectKey: string,
): { host: string; port: string } {
  const origin = { instance, field: `meta.connect.${connectKey}` };
  checked(connectKey, 'dns1035Label', 'connect key', origin);
  const stem = `SEED_${connectKey.toUpperCase().replace(/-/g, '_')}`;
  return {
    host: checked(`${stem}_HOST`, 'envVarName', 'variable', origin),
    port: checked(`${stem}_PORT`, 'envVarName', 'variable', origin),
  };
}

/** The labels that select an instance's pods: stable across generations. */
export function selectorLabels(instance: string): Record<string, string> {
  return {
    [LABEL_MANAGED_BY]: MANAGED_BY_SEED,
    [LABEL_INSTANCE]: instanceObjectName(instance),
  };
}

/**
 * The metadata every object of an instance carries: the selector labels and the
 * instance's hash. Nothing of the flake (generation, commit) is here, so a push leaves the
 * objects of every instance it did not change exactly as they are, and the reconciler
 * writes none of them.
 */
export function instanceStamp(instance: SeedInstance): {
  labels: Record<string, string>;
  annotations: Record<string, string>;
} {
  return {
    labels: selectorLabels(instance.name),
    annotations: { [ANNOTATION_INSTANCE_HASH]: instanceHash(instance) },
  };
}

/**
 * The metadata of the flake's Namespace: Seed's label and whose the namespace is. Nothing
 * here changes from one push to the next, so a push never writes the Namespace.
 */
export function flakeOwnerStamp(flakeUri: string): {
  labels: Record<string, string>;
  annotations: Record<string, string>;
} {
  return {
    labels: { [LABEL_MANAGED_BY]: MANAGED_BY_SEED },
    annotations: {
      [ANNOTATION_FLAKE_URI]: flakeUri,
      [ANNOTATION_FLAKE_SHA256]: flakeUriDigest(flakeUri),
    },
  };
}

/**
 * The metadata of the flake's state (`seed-state`): the Namespace's, and where the
 * generation came from, recorded once per flake. Annotation values are free text.
 */
export function flakeStamp(context: GenerationContext): {
  labels: Record<string, string>;
  annotations: Record<string, string>;
} {
  const owner = flakeOwnerStamp(context.flakeUri);
  return {
    labels: owner.labels,
    annotations: {
      ...owner.annotations,
      [ANNOTATION_COMMIT]: context.commit,
      [ANNOTATION_GENERATION]: checkGeneration(context.generation),
    },
  };
}
