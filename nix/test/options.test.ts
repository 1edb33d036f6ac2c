// nix/modules/options.nix under the real module system: nixpkgs' lib vendored in
// nix/vendor, through offline.nix (mkSeed's evaluation minus NixOS, what the offline
// flakes export). Every short and long form, the defaults, definitions from several
// modules, mkDefault/mkForce/mkIf, and every refusal with the message a tenant sees:
// meta.nix's for values, the module system's own for types, undeclared options and
// conflicting definitions. The declared types and defaults are pinned too, so changing
// one fails here even where no case would notice.
import { beforeAll, describe, expect, it } from '@jest/globals';
import {
  LIB,
  OFFLINE_NIX,
  evalJson,
  mapLimited,
  metaOf,
  nixFailure,
  nixString,
  type Meta,
} from './nix';

/** An instance to evaluate: its module as Nix source (may use `lib`), name and system. */
interface Instance {
  module: string;
  name?: string;
  system?: string;
}

/** The Nix list of `{ lib; name; module; system; }` arguments to seedMetaOf. */
function instancesExpression(instances: Instance[]): string {
  const items = instances.map(
    ({ module, name = 'web', system = 'x86_64-linux' }) =>
      `{ inherit lib; name = ${nixString(name)}; system = ${nixString(system)}; module = ${module}; }`,
  );
  return `[\n${items.join('\n')}\n]`;
}

const PRELUDE = `lib = ${LIB}; offline = import ${nixString(OFFLINE_NIX)};`;

interface CaseResult {
  ok: boolean;
  meta?: Meta;
  again?: Meta | 'failed';
}

/**
 * Every instance in one nix process: did it evaluate, its meta, and the meta of a module
 * that sets the meta's own size/expose/storage/connect/rollout/shoot (the coerced forms
 * must be accepted back unchanged).
 */
async function evalCases(instances: Instance[]): Promise<CaseResult[]> {
  const expression = `
    let
      ${PRELUDE}
      again = args: m: offline.seedMetaOf (args // {
        module = { seed = { inherit (m) size expose storage connect rollout shoot; }; };
      });
      run = args:
        let r = builtins.tryEval (offline.seedMetaOf args); in
        if !r.success then { ok = false; } else {
          ok = true;
          meta = r.value;
          again = let a = builtins.tryEval (again args r.value); in if a.success then a.value else "failed";
        };
    in map run ${instancesExpression(instances)}`;
  return (await evalJson(expression)) as CaseResult[];
}

/** One instance on its own: nix's stderr if it failed, null if it evaluated. */
function evalError(instance: Instance): Promise<string | null> {
  const expression = `let ${PRELUDE} in offline.seedMetaOf (builtins.head ${instancesExpression([instance])})`;
  return nixFailure(['--eval', '--strict', '--json', '--expr', expression]);
}

/** Several modules of one instance, as NixOS would gather them. */
const modules = (...sources: string[]): string => `{ imports = [ ${sources.join(' ')} ]; }`;

// [description, instance, expected meta]
const accepted: Array<[string, Instance, Meta]> = [
  ['the defaults of an empty module', { module: '{ }' }, metaOf()],
  ...['xs', 's', 'm', 'l', 'xl'].map((size): [string, Instance, Meta] => [
    `seed.size = "${size}"`,
    { module: `{ seed.size = "${size}"; }` },
    metaOf({ size }),
  ]),
  [
    'another system',
    { module: '{ }', system: 'aarch64-linux' },
    metaOf({ system: 'aarch64-linux' }),
  ],
  [
    'seed.expose.http = 8080 (coerced, protocol http)',
    { module: '{ seed.expose.http = 8080; }' },
    metaOf({ expose: { http: { port: 8080, protocol: 'http' } } }),
  ],
  [
    'an expose attrset without protocol',
    { module: '{ seed.expose.api = { port = 9000; }; }' },
    metaOf({ expose: { api: { port: 9000, protocol: 'http' } } }),
  ],
  ...['tcp', 'udp', 'dns', 'http', 'grpc'].map((protocol): [string, Instance, Meta] => [
    `protocol ${protocol}`,
    { module: `{ seed.expose.svc = { port = 1234; protocol = "${protocol}"; }; }` },
    metaOf({ expose: { svc: { port: 1234, protocol } } }),
  ]),
  [
    'seed.storage.data = "1Gi" (coerced, default mount point)',
    { module: '{ seed.storage.data = "1Gi"; }' },
    metaOf({ storage: { data: { size: '1Gi', mountPoint: '/seed/storage/data' } } }),
  ],
  [
    'a storage attrset with and without a mount point',
    {
      module: `{ seed.storage = { db = { size = "10Gi"; mountPoint = "/var/lib/postgresql"; }; cache = { size = "2Gi"; }; }; }`,
    },
    metaOf({
      storage: {
        db: { size: '10Gi', mountPoint: '/var/lib/postgresql' },
        cache: { size: '2Gi', mountPoint: '/seed/storage/cache' },
      },
    }),
  ],
  [
    'seed.connect.db = "postgres" (coerced, port null)',
    { module: '{ seed.connect.db = "postgres"; }' },
    metaOf({ connect: { db: { service: 'postgres', port: null } } }),
  ],
  [
    'a connect attrset with and without a port',
    {
      module: `{ seed.connect = { db = { service = "postgres"; port = 5432; }; cache = { service = "redis.infra.svc"; }; }; }`,
    },
    metaOf({
      connect: {
        db: { service: 'postgres', port: 5432 },
        cache: { service: 'redis.infra.svc', port: null },
      },
    }),
  ],
  [
    'seed.rollout = "rolling"',
    { module: '{ seed.rollout = "rolling"; }' },
    metaOf({ rollout: 'rolling' }),
  ],
  [
    'the seed.strategy alias',
    { module: '{ seed.strategy = "rolling"; }' },
    metaOf({ rollout: 'rolling' }),
  ],
  [
    'seed.strategy and seed.rollout agreeing',
    { module: '{ seed.strategy = "rolling"; seed.rollout = "rolling"; }' },
    metaOf({ rollout: 'rolling' }),
  ],
  [
    'seed.shoot.enable = true',
    { module: '{ seed.shoot.enable = true; }' },
    metaOf({ shoot: { enable: true } }),
  ],
  [
    'the example of ARCHITECTURE.md',
    {
      module: `{ seed.expose.http = 8080; seed.storage.data = "1Gi"; seed.connect.db = { service = "postgres"; port = 5432; }; }`,
    },
    metaOf({
      expose: { http: { port: 8080, protocol: 'http' } },
      storage: { data: { size: '1Gi', mountPoint: '/seed/storage/data' } },
      connect: { db: { service: 'postgres', port: 5432 } },
    }),
  ],
  [
    'a module function reading config and lib',
    {
      module: `{ config, lib, ... }: {
        seed.shoot.enable = true;
        seed.expose.http = lib.mkIf config.seed.shoot.enable 8080;
        seed.connect.self = config.networking.hostName;
      }`,
    },
    metaOf({
      expose: { http: { port: 8080, protocol: 'http' } },
      connect: { self: { service: 'web', port: null } },
      shoot: { enable: true },
    }),
  ],
  [
    'entries of one option from two modules',
    {
      module: modules(
        '{ seed.expose.http = 8080; seed.storage.data = "1Gi"; }',
        '{ seed.expose.api = { port = 9000; protocol = "grpc"; }; seed.connect.db = "postgres"; }',
      ),
    },
    metaOf({
      expose: { http: { port: 8080, protocol: 'http' }, api: { port: 9000, protocol: 'grpc' } },
      storage: { data: { size: '1Gi', mountPoint: '/seed/storage/data' } },
      connect: { db: { service: 'postgres', port: null } },
    }),
  ],
  [
    'one entry from two modules: a short form and the long form of another attribute',
    {
      module: modules(
        '{ seed.storage.data = "1Gi"; seed.connect.db = "postgres"; }',
        '{ seed.storage.data.mountPoint = "/var/lib/data"; seed.connect.db.port = 5432; }',
      ),
    },
    metaOf({
      storage: { data: { size: '1Gi', mountPoint: '/var/lib/data' } },
      connect: { db: { service: 'postgres', port: 5432 } },
    }),
  ],
  [
    'the same value from two modules',
    { module: modules('{ seed.size = "m"; }', '{ seed.size = "m"; }') },
    metaOf({ size: 'm' }),
  ],
  [
    'mkDefault alone',
    { module: '{ lib, ... }: { seed.size = lib.mkDefault "m"; }' },
    metaOf({ size: 'm' }),
  ],
  [
    'a plain definition over mkDefault',
    {
      module: modules('({ lib, ... }: { seed.size = lib.mkDefault "m"; })', '{ seed.size = "l"; }'),
    },
    metaOf({ size: 'l' }),
  ],
  [
    'mkForce over a plain definition',
    {
      module: modules(
        '{ seed.rollout = "recreate"; }',
        '({ lib, ... }: { seed.rollout = lib.mkForce "rolling"; })',
      ),
    },
    metaOf({ rollout: 'rolling' }),
  ],
  [
    'mkForce of a whole attrset replaces the entries of other modules',
    {
      module: modules(
        '{ seed.expose.http = 8080; }',
        '({ lib, ... }: { seed.expose = lib.mkForce { api = 9000; }; })',
      ),
    },
    metaOf({ expose: { api: { port: 9000, protocol: 'http' } } }),
  ],
  [
    'mkDefault inside a long form',
    {
      module: modules(
        '({ lib, ... }: { seed.expose.dns = { port = 53; protocol = lib.mkDefault "udp"; }; })',
        '{ seed.expose.dns.protocol = "dns"; }',
      ),
    },
    metaOf({ expose: { dns: { port: 53, protocol: 'dns' } } }),
  ],
  [
    'mkIf false drops a definition, mkIf true keeps it',
    {
      module: `{ lib, ... }: {
        seed.expose = lib.mkIf false { http = 8080; };
        seed.storage.data = lib.mkIf true "1Gi";
        seed.shoot.enable = lib.mkIf false true;
      }`,
    },
    metaOf({ storage: { data: { size: '1Gi', mountPoint: '/seed/storage/data' } } }),
  ],
  [
    'mkMerge of two attrsets',
    {
      module: `{ lib, ... }: { seed = lib.mkMerge [ { size = "xs"; } { expose.http = 80; } ]; }`,
    },
    metaOf({ size: 'xs', expose: { http: { port: 80, protocol: 'http' } } }),
  ],
];

// [description, instance, the start of the message (after "error: "), more of it]
const rejected: Array<[string, Instance, string, string?]> = [
  // Values: meta.nix's messages, the ones `seed.lib.seedMeta` and the builder give.
  [
    'an unknown tier',
    { module: '{ seed.size = "xxl"; }' },
    'seed.size: unknown tier "xxl" (expected one of xs, s, m, l, xl)',
  ],
  [
    'port 0',
    { module: '{ seed.expose.http = 0; }' },
    'seed.expose.http.port: 0 is not a port number (1-65535)',
  ],
  [
    'port 70000 (ports are typed as integers, so meta.nix judges the range)',
    { module: '{ seed.expose.http = 70000; }' },
    'seed.expose.http.port: 70000 is not a port number (1-65535)',
  ],
  [
    'port 70000 in the long form',
    { module: '{ seed.expose.http = { port = 70000; protocol = "tcp"; }; }' },
    'seed.expose.http.port: 70000 is not a port number (1-65535)',
  ],
  [
    'an unknown protocol',
    { module: '{ seed.expose.http = { port = 443; protocol = "https"; }; }' },
    'seed.expose.http.protocol: unknown protocol "https" (expected one of tcp, udp, dns, http, grpc)',
  ],
  [
    'a quantity with a space',
    { module: '{ seed.storage.data = "1 GB"; }' },
    'seed.storage.data.size: "1 GB" is not a Kubernetes quantity such as "1Gi"',
  ],
  [
    'a zero quantity',
    { module: '{ seed.storage.data = "0Gi"; }' },
    'seed.storage.data.size: "0Gi" is zero',
  ],
  [
    'a relative mount point',
    { module: '{ seed.storage.data = { size = "1Gi"; mountPoint = "data"; }; }' },
    'seed.storage.data.mountPoint: "data" is not an absolute path',
  ],
  [
    'two volumes on one mount point, from two modules',
    {
      module: modules(
        '{ seed.storage.a = { size = "1Gi"; mountPoint = "/data"; }; }',
        '{ seed.storage.b = { size = "1Gi"; mountPoint = "/data"; }; }',
      ),
    },
    'seed.storage.b.mountPoint: mount point "/data" is already used by seed.storage.a',
  ],
  [
    'an upper-case expose name',
    { module: '{ seed.expose.Http = 80; }' },
    'seed.expose.Http: invalid name "Http"',
  ],
  [
    'an expose name of 12 characters',
    { module: '{ seed.expose.abcdefghijkl = 80; }' },
    'seed.expose.abcdefghijkl: name "abcdefghijkl" is 12 characters long; at most 11 are allowed',
  ],
  [
    'two entries on one TCP port, from two modules',
    {
      module: modules(
        '{ seed.expose.a = 80; }',
        '{ seed.expose.b = { port = 80; protocol = "tcp"; }; }',
      ),
    },
    'seed.expose.b.port: port 80/tcp is already used by seed.expose.a',
  ],
  [
    'two entries making one Service port name',
    { module: '{ seed.expose = { x = { port = 53; protocol = "dns"; }; x-tcp = 8080; }; }' },
    'seed.expose.x-tcp: Service port name "x-tcp" is already used by seed.expose.x',
  ],
  [
    'an unknown rollout',
    { module: '{ seed.rollout = "blue-green"; }' },
    'seed.rollout: unknown rollout "blue-green" (expected one of recreate, rolling)',
  ],
  [
    'an unknown strategy (reported under seed.rollout, which the alias sets)',
    { module: '{ seed.strategy = "fast"; }' },
    'seed.rollout: unknown rollout "fast"',
  ],
  [
    'a service that is no DNS name',
    { module: '{ seed.connect.db = "Post Gres"; }' },
    'seed.connect.db.service: "Post Gres" is not a DNS name',
  ],
  [
    'a connect port 65536',
    { module: '{ seed.connect.db = { service = "postgres"; port = 65536; }; }' },
    'seed.connect.db.port: 65536 is not a port number (1-65535)',
  ],
  [
    'a connect port 0',
    { module: '{ seed.connect.db = { service = "postgres"; port = 0; }; }' },
    'seed.connect.db.port: 0 is not a port number',
  ],
  [
    'an invalid instance name',
    { module: '{ }', name: 'Web' },
    'name: "Web" is not a valid instance name',
  ],
  // Types, undeclared options and conflicts: the module system's words.
  [
    'a size that is not a string',
    { module: '{ seed.size = 2; }' },
    "A definition for option `seed.size' is not of type `string'.",
  ],
  [
    'port "80"',
    { module: '{ seed.expose.http = "80"; }' },
    "A definition for option `seed.expose.http' is not of type `(submodule) or signed integer convertible to it'.",
  ],
  [
    'an expose attrset without a port',
    { module: '{ seed.expose.http.protocol = "tcp"; }' },
    "The option `seed.expose.http.port' was accessed but has no value defined.",
  ],
  [
    'a storage size that is a number',
    { module: '{ seed.storage.data = 5; }' },
    "A definition for option `seed.storage.data' is not of type `(submodule) or string convertible to it'.",
  ],
  [
    'a storage attrset without a size',
    { module: '{ seed.storage.data.mountPoint = "/data"; }' },
    "The option `seed.storage.data.size' was accessed but has no value defined.",
  ],
  [
    'a connect attrset without a service',
    { module: '{ seed.connect.db.port = 5432; }' },
    "The option `seed.connect.db.service' was accessed but has no value defined.",
  ],
  [
    'a connect number',
    { module: '{ seed.connect.db = 5432; }' },
    "A definition for option `seed.connect.db' is not of type `(submodule) or string convertible to it'.",
  ],
  [
    'expose that is a list',
    { module: '{ seed.expose = [ 80 ]; }' },
    "A definition for option `seed.expose' is not of type `attribute set of (",
  ],
  [
    'an undeclared seed option',
    { module: '{ seed.sise = "m"; }' },
    "The option `seed.sise' does not exist.",
    "Did you mean `seed.size'",
  ],
  [
    'an undeclared expose attribute',
    { module: '{ seed.expose.http = { port = 80; prot = "tcp"; }; }' },
    "The option `seed.expose.http.prot' does not exist.",
  ],
  [
    'seed.shoot = true',
    { module: '{ seed.shoot = true; }' },
    "In module `<unknown-file>', you're trying to define a value of type `bool'",
    '`seed.shoot',
  ],
  [
    'shoot.enable = "yes"',
    { module: '{ seed.shoot.enable = "yes"; }' },
    "A definition for option `seed.shoot.enable' is not of type `boolean'.",
  ],
  [
    'seed.meta set by the module (read-only)',
    { module: '{ seed.meta = { }; }' },
    "The option `seed.meta' is read-only, but it's set multiple times.",
  ],
  [
    'two modules disagreeing',
    { module: modules('{ seed.size = "m"; }', '{ seed.size = "l"; }') },
    "The option `seed.size' has conflicting definition values:",
    'Use `lib.mkForce value` or `lib.mkDefault value`',
  ],
  [
    'two modules giving one port two numbers',
    { module: modules('{ seed.expose.http = 8080; }', '{ seed.expose.http = 9090; }') },
    "The option `seed.expose.http.port' has conflicting definition values:",
  ],
  [
    'seed.strategy and seed.rollout disagreeing',
    { module: '{ seed.rollout = "rolling"; seed.strategy = "recreate"; }' },
    "The option `seed.rollout' has conflicting definition values:",
  ],
  [
    'two mkForce definitions disagreeing',
    {
      module: modules(
        '({ lib, ... }: { seed.size = lib.mkForce "m"; })',
        '({ lib, ... }: { seed.size = lib.mkForce "l"; })',
      ),
    },
    "The option `seed.size' has conflicting definition values:",
  ],
];

describe('options.nix accepts every form of the seed.* options (real lib.evalModules)', () => {
  let results: CaseResult[] = [];

  beforeAll(async () => {
    results = await evalCases(accepted.map(([, instance]) => instance));
  });

  it.each(accepted.map(([description, , meta], index) => ({ description, meta, index })))(
    '$description',
    ({ index, meta }) => {
      expect(results[index]?.ok).toBe(true);
      expect(results[index]?.meta).toEqual(meta);
    },
  );

  it('accepts every meta back as the options of a module, unchanged', () => {
    expect(results.map((result) => result.again)).toEqual(results.map((result) => result.meta));
  });
});

describe('options.nix refuses bad options with the message a tenant sees', () => {
  const stderrs = new Map<number, string | null>();

  beforeAll(async () => {
    const outputs = await mapLimited(rejected, 4, ([, instance]) => evalError(instance));
    outputs.forEach((stderr, index) => stderrs.set(index, stderr));
  });

  it.each(
    rejected.map(([description, , start, more], index) => ({ description, start, more, index })),
  )('$description', ({ index, start, more }) => {
    const stderr = stderrs.get(index);
    expect(stderr).not.toBeNull();
    expect(stderr).toContain(`error: ${start}`);
    if (more !== undefined) expect(stderr).toContain(more);
  });
});

describe('the declared types and defaults', () => {
  it('are those of docs/options.md', async () => {
    // Each option's type as the module system describes it, its default and whether it
    // is read-only; for the entries of expose/storage/connect, their sub-options too.
    const declared = await evalJson(`
      let
        ${PRELUDE}
        inherit (offline.evalInstance { inherit lib; name = "web"; module = { }; }) options;
        describe = option: { type = option.type.description; }
          // lib.optionalAttrs (option ? default && !(option.readOnly or false)) { inherit (option) default; }
          // lib.optionalAttrs (option.readOnly or false) { readOnly = true; };
        entries = option: describe option // {
          entry = lib.mapAttrs (_: describe) (removeAttrs (option.type.getSubOptions option.loc) [ "_module" ]);
        };
      in {
        size = describe options.seed.size;
        expose = entries options.seed.expose;
        storage = entries options.seed.storage;
        connect = entries options.seed.connect;
        rollout = describe options.seed.rollout;
        strategy = describe options.seed.strategy;
        shoot.enable = describe options.seed.shoot.enable;
        meta = describe options.seed.meta;
      }`);
    expect(declared).toEqual({
      size: { type: 'string', default: 's' },
      expose: {
        type: 'attribute set of ((submodule) or signed integer convertible to it)',
        default: {},
        entry: { port: { type: 'signed integer' }, protocol: { type: 'string', default: 'http' } },
      },
      storage: {
        type: 'attribute set of ((submodule) or string convertible to it)',
        default: {},
        entry: {
          size: { type: 'string' },
          mountPoint: { type: 'string', default: '/seed/storage/‹name›' },
        },
      },
      connect: {
        type: 'attribute set of ((submodule) or string convertible to it)',
        default: {},
        entry: {
          service: { type: 'string' },
          port: { type: 'null or signed integer', default: null },
        },
      },
      rollout: { type: 'string', default: 'recreate' },
      strategy: { type: 'string' },
      shoot: { enable: { type: 'boolean', default: false } },
      meta: { type: 'attribute set', readOnly: true },
    });
  });
});

describe('seed.secrets offline (modules/secrets-option.nix)', () => {
  it('evaluates an instance with secrets to a meta that asks for a TPM', async () => {
    // The file need not exist yet: it is encrypted to the recipient the TPM yields.
    const meta = await evalJson(
      `let ${PRELUDE} in offline.seedMetaOf { inherit lib; name = "web"; module = { seed.secrets.db = /nowhere/db.enc.yaml; seed.secrets.tls = { file = /nowhere/tls.enc.json; mode = "0440"; }; }; }`,
    );
    expect(meta).toEqual(metaOf({ tpm: true }));
  });
});
