// nix/meta.nix through the real nix: every `seed.*` form it accepts, the meta it gives
// back, idempotence, and every error with its message. Successful cases run in one nix
// process (a list mapped with builtins.tryEval); errors need one process each, because
// tryEval does not return the message, so they run a few at a time before the tests.
import { beforeAll, describe, expect, it } from '@jest/globals';
import { META_NIX, TIERS, evalJson, mapLimited, metaOf, nixFailure, type Meta } from './nix';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

interface MetaArgs {
  name: string;
  system?: string;
  seed?: Json;
}

interface CaseResult {
  ok: boolean;
  meta?: Meta;
  again?: Meta | 'failed';
}

/**
 * Evaluates meta.nix on every case in one process. For each case: did it evaluate, the
 * meta, and the meta of its own expose/storage/connect/size/rollout/shoot fed back in.
 */
async function evalCases(cases: MetaArgs[]): Promise<CaseResult[]> {
  const expression = `{ json }:
    let
      meta = import ${JSON.stringify(META_NIX)};
      again = m: meta {
        inherit (m) name system;
        seed = { inherit (m) size expose storage connect rollout shoot tpm; };
      };
      run = args:
        let r = builtins.tryEval (meta args); in
        if !r.success then { ok = false; } else {
          ok = true;
          meta = r.value;
          again = let a = builtins.tryEval (again r.value); in if a.success then a.value else "failed";
        };
    in map run (builtins.fromJSON json)`;
  return (await evalJson(expression, JSON.stringify(cases))) as CaseResult[];
}

/** Evaluates one case on its own: nix's stderr if it failed, null if it passed. */
function evalError(args: MetaArgs): Promise<string | null> {
  const expression = `{ json }: import ${JSON.stringify(META_NIX)} (builtins.fromJSON json)`;
  return nixFailure([
    '--eval',
    '--strict',
    '--json',
    '--expr',
    expression,
    '--argstr',
    'json',
    JSON.stringify(args),
  ]);
}

const web = (seed: Json): MetaArgs => ({ name: 'web', seed });

// [description, arguments, expected meta]
const accepted: Array<[string, MetaArgs, Meta]> = [
  ['defaults without a seed argument', { name: 'web' }, metaOf()],
  ['defaults with seed = {}', web({}), metaOf()],
  ['another system', { name: 'web', system: 'aarch64-linux' }, metaOf({ system: 'aarch64-linux' })],
  ['a name of 63 characters', { name: 'a'.repeat(63) }, metaOf({ name: 'a'.repeat(63) })],
  ['a name with digits and dashes', { name: 'web-2' }, metaOf({ name: 'web-2' })],
  ...Object.keys(TIERS).map((size): [string, MetaArgs, Meta] => [
    `size ${size}`,
    web({ size }),
    metaOf({ size }),
  ]),
  [
    'a bare port (protocol http)',
    web({ expose: { http: 8080 } }),
    metaOf({ expose: { http: { port: 8080, protocol: 'http' } } }),
  ],
  [
    'an attrset port without protocol',
    web({ expose: { api: { port: 9000 } } }),
    metaOf({ expose: { api: { port: 9000, protocol: 'http' } } }),
  ],
  ...['tcp', 'udp', 'dns', 'http', 'grpc'].map((protocol): [string, MetaArgs, Meta] => [
    `protocol ${protocol}`,
    web({ expose: { svc: { port: 1234, protocol } } }),
    metaOf({ expose: { svc: { port: 1234, protocol } } }),
  ]),
  [
    'ports 1 and 65535',
    web({ expose: { low: 1, high: { port: 65535, protocol: 'tcp' } } }),
    metaOf({
      expose: { low: { port: 1, protocol: 'http' }, high: { port: 65535, protocol: 'tcp' } },
    }),
  ],
  [
    'one port number on TCP and on UDP',
    web({ expose: { web: 53, stats: { port: 53, protocol: 'udp' } } }),
    metaOf({
      expose: { web: { port: 53, protocol: 'http' }, stats: { port: 53, protocol: 'udp' } },
    }),
  ],
  [
    'an expose name of 11 characters with dns',
    web({ expose: { 'abcdefghi-1': { port: 53, protocol: 'dns' } } }),
    metaOf({ expose: { 'abcdefghi-1': { port: 53, protocol: 'dns' } } }),
  ],
  [
    'a size string (default mount point)',
    web({ storage: { data: '1Gi' } }),
    metaOf({ storage: { data: { size: '1Gi', mountPoint: '/seed/storage/data' } } }),
  ],
  ...['500Mi', '10G', '1.5Ti', '100k', '2048', '16Ti'].map((size): [string, MetaArgs, Meta] => [
    `quantity ${size}`,
    web({ storage: { vol: size } }),
    metaOf({ storage: { vol: { size, mountPoint: '/seed/storage/vol' } } }),
  ]),
  [
    'a size attrset with a custom mount point',
    web({ storage: { db: { size: '10Gi', mountPoint: '/var/lib/postgresql' } } }),
    metaOf({ storage: { db: { size: '10Gi', mountPoint: '/var/lib/postgresql' } } }),
  ],
  [
    'a size attrset without a mount point',
    web({ storage: { cache: { size: '2Gi' } } }),
    metaOf({ storage: { cache: { size: '2Gi', mountPoint: '/seed/storage/cache' } } }),
  ],
  [
    'a connect string',
    web({ connect: { db: 'postgres' } }),
    metaOf({ connect: { db: { service: 'postgres', port: null } } }),
  ],
  [
    'a connect attrset with a port',
    web({ connect: { db: { service: 'postgres', port: 5432 } } }),
    metaOf({ connect: { db: { service: 'postgres', port: 5432 } } }),
  ],
  [
    'a connect attrset without a port',
    web({ connect: { cache: { service: 'redis' } } }),
    metaOf({ connect: { cache: { service: 'redis', port: null } } }),
  ],
  [
    'a connect attrset with port = null and a qualified name',
    web({ connect: { 'other-db': { service: 'db.team-b.svc.cluster.local', port: null } } }),
    metaOf({ connect: { 'other-db': { service: 'db.team-b.svc.cluster.local', port: null } } }),
  ],
  ['rollout rolling', web({ rollout: 'rolling' }), metaOf({ rollout: 'rolling' })],
  ['rollout recreate', web({ rollout: 'recreate' }), metaOf()],
  ['the strategy alias', web({ strategy: 'rolling' }), metaOf({ rollout: 'rolling' })],
  [
    'strategy and rollout agreeing',
    web({ strategy: 'rolling', rollout: 'rolling' }),
    metaOf({ rollout: 'rolling' }),
  ],
  ['shoot enabled', web({ shoot: { enable: true } }), metaOf({ shoot: { enable: true } })],
  ['shoot = {}', web({ shoot: {} }), metaOf()],
  ['a TPM (set from seed.secrets)', web({ tpm: true }), metaOf({ tpm: true })],
  [
    'module-system forms (coerced, with _module)',
    web({
      size: 'm',
      expose: { http: { port: 80, protocol: 'http', _module: {} } },
      storage: { data: { size: '1Gi', mountPoint: '/seed/storage/data', _module: {} } },
      connect: { db: { service: 'postgres', port: null, _module: {} } },
      rollout: 'recreate',
      shoot: { enable: false },
    }),
    metaOf({
      size: 'm',
      expose: { http: { port: 80, protocol: 'http' } },
      storage: { data: { size: '1Gi', mountPoint: '/seed/storage/data' } },
      connect: { db: { service: 'postgres', port: null } },
    }),
  ],
  [
    'the example of ARCHITECTURE.md',
    web({
      expose: { http: 8080 },
      storage: { data: '1Gi' },
      connect: { db: { service: 'postgres', port: 5432 } },
    }),
    metaOf({
      expose: { http: { port: 8080, protocol: 'http' } },
      storage: { data: { size: '1Gi', mountPoint: '/seed/storage/data' } },
      connect: { db: { service: 'postgres', port: 5432 } },
    }),
  ],
  [
    'everything at once',
    {
      name: 'dns-1',
      system: 'aarch64-linux',
      seed: {
        size: 'xl',
        expose: {
          dns: { port: 53, protocol: 'dns' },
          api: { port: 50051, protocol: 'grpc' },
          metrics: 9100,
        },
        storage: { zones: '100Mi', logs: { size: '5Gi', mountPoint: '/var/log/dns' } },
        connect: { upstream: { service: 'resolver.infra.svc', port: 53 }, db: 'postgres' },
        strategy: 'rolling',
        shoot: { enable: true },
      },
    },
    {
      name: 'dns-1',
      system: 'aarch64-linux',
      size: 'xl',
      resources: { vcpus: 8, memory: 8192 },
      expose: {
        dns: { port: 53, protocol: 'dns' },
        api: { port: 50051, protocol: 'grpc' },
        metrics: { port: 9100, protocol: 'http' },
      },
      storage: {
        zones: { size: '100Mi', mountPoint: '/seed/storage/zones' },
        logs: { size: '5Gi', mountPoint: '/var/log/dns' },
      },
      connect: {
        upstream: { service: 'resolver.infra.svc', port: 53 },
        db: { service: 'postgres', port: null },
      },
      rollout: 'rolling',
      shoot: { enable: true },
      tpm: false,
    },
  ],
];

// [description, arguments, the message's start (option path first), more of the message]
const rejected: Array<[string, MetaArgs, string, string?]> = [
  [
    'an unknown tier',
    web({ size: 'xxl' }),
    'seed.size: unknown tier "xxl" (expected one of xs, s, m, l, xl)',
  ],
  ['a size that is not a string', web({ size: 2 }), 'seed.size: unknown tier 2'],
  [
    'port 0',
    web({ expose: { http: 0 } }),
    'seed.expose.http.port: 0 is not a port number (1-65535)',
  ],
  [
    'port 70000',
    web({ expose: { http: 70000 } }),
    'seed.expose.http.port: 70000 is not a port number (1-65535)',
  ],
  [
    'port 70000 in an attrset',
    web({ expose: { http: { port: 70000 } } }),
    'seed.expose.http.port: 70000 is not a port number',
  ],
  [
    'port "80"',
    web({ expose: { http: '80' } }),
    'seed.expose.http: "80" is not a port number (1-65535)',
  ],
  [
    'port "80" in an attrset',
    web({ expose: { http: { port: '80', protocol: 'tcp' } } }),
    'seed.expose.http.port: "80" is not a port number',
  ],
  [
    'an attrset without a port',
    web({ expose: { http: { protocol: 'tcp' } } }),
    'seed.expose.http.port: missing',
  ],
  [
    'an unknown protocol',
    web({ expose: { http: { port: 443, protocol: 'https' } } }),
    'seed.expose.http.protocol: unknown protocol "https"',
    'tcp, udp, dns, http, grpc',
  ],
  [
    'expose that is not an attrset',
    web({ expose: [80] }),
    'seed.expose: expected an attribute set',
  ],
  [
    'a quantity with a space',
    web({ storage: { data: '1 GB' } }),
    'seed.storage.data.size: "1 GB" is not a Kubernetes quantity such as "1Gi"',
  ],
  [
    'quantity 1GB',
    web({ storage: { data: '1GB' } }),
    'seed.storage.data.size: "1GB" is not a Kubernetes quantity',
  ],
  [
    'quantity 1gi',
    web({ storage: { data: '1gi' } }),
    'seed.storage.data.size: "1gi" is not a Kubernetes quantity',
  ],
  [
    'a quantity in an attrset',
    web({ storage: { data: { size: '-1Gi' } } }),
    'seed.storage.data.size: "-1Gi" is not a Kubernetes quantity',
  ],
  ['a zero quantity', web({ storage: { data: '0Gi' } }), 'seed.storage.data.size: "0Gi" is zero'],
  [
    'a size that is a number',
    web({ storage: { data: 5 } }),
    'seed.storage.data: expected a size such as "1Gi"',
  ],
  [
    'a storage attrset without a size',
    web({ storage: { data: { mountPoint: '/data' } } }),
    'seed.storage.data.size: missing',
  ],
  [
    'a relative mount point',
    web({ storage: { data: { size: '1Gi', mountPoint: 'data' } } }),
    'seed.storage.data.mountPoint: "data" is not an absolute path',
  ],
  [
    'the root as mount point',
    web({ storage: { data: { size: '1Gi', mountPoint: '/' } } }),
    'seed.storage.data.mountPoint: "/" would hide the whole file system',
  ],
  [
    'a mount point with ..',
    web({ storage: { data: { size: '1Gi', mountPoint: '/var/../etc' } } }),
    'seed.storage.data.mountPoint: "/var/../etc" is not a normalised path',
  ],
  [
    'a mount point with a trailing slash',
    web({ storage: { data: { size: '1Gi', mountPoint: '/var/lib/' } } }),
    'seed.storage.data.mountPoint: "/var/lib/" is not a normalised path',
  ],
  [
    'two volumes on one mount point',
    web({
      storage: { a: { size: '1Gi', mountPoint: '/data' }, b: { size: '1Gi', mountPoint: '/data' } },
    }),
    'seed.storage.b.mountPoint: mount point "/data" is already used by seed.storage.a',
  ],
  [
    'an upper-case expose name',
    web({ expose: { Http: 80 } }),
    'seed.expose.Http: invalid name "Http"',
  ],
  [
    'an expose name with a dot',
    web({ expose: { 'my.port': 80 } }),
    'seed.expose."my.port": invalid name "my.port"',
  ],
  [
    'an expose name ending in -',
    web({ expose: { 'web-': 80 } }),
    'seed.expose.web-: invalid name "web-"',
  ],
  [
    'a storage name with _',
    web({ storage: { my_data: '1Gi' } }),
    'seed.storage.my_data: invalid name "my_data"',
  ],
  [
    'a connect name starting with a digit',
    web({ connect: { '1db': 'postgres' } }),
    'seed.connect."1db": invalid name "1db"',
  ],
  [
    'an expose name of 12 characters',
    web({ expose: { abcdefghijkl: 80 } }),
    'seed.expose.abcdefghijkl: name "abcdefghijkl" is 12 characters long; at most 11 are allowed',
    'dns adds -tcp/-udp',
  ],
  [
    'an expose name with --',
    web({ expose: { 'a--b': 80 } }),
    'seed.expose.a--b: invalid name "a--b"',
    '"--"',
  ],
  [
    'a storage name of 64 characters',
    web({ storage: { ['a'.repeat(64)]: '1Gi' } }),
    `seed.storage.${'a'.repeat(64)}: name "${'a'.repeat(64)}" is 64 characters long; at most 63`,
  ],
  [
    'more expose entries than Seed allows',
    web({ expose: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`p${i}`, 1000 + i])) }),
    "seed.expose: 17 entries; at most 16 expose entries per instance (Seed's limit)",
  ],
  [
    'more storage entries than Seed allows',
    web({ storage: Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`v${i}`, '1Gi'])) }),
    "seed.storage: 9 entries; at most 8 storage entries per instance (Seed's limit)",
  ],
  [
    'more connect entries than Seed allows',
    web({ connect: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`c${i}`, 'db'])) }),
    "seed.connect: 33 entries; at most 32 connect entries per instance (Seed's limit)",
  ],
  [
    'a volume above 16Ti',
    web({ storage: { data: '16.5Ti' } }),
    `seed.storage.data.size: "16.5Ti" is larger than 16Ti, Seed's limit per volume`,
  ],
  [
    'two entries on one TCP port',
    web({ expose: { a: 80, b: { port: 80, protocol: 'tcp' } } }),
    'seed.expose.b.port: port 80/tcp is already used by seed.expose.a',
  ],
  [
    'dns and udp on one port',
    web({ expose: { dns: { port: 53, protocol: 'dns' }, raw: { port: 53, protocol: 'udp' } } }),
    'seed.expose.raw.port: port 53/udp is already used by seed.expose.dns',
  ],
  [
    'grpc and dns on one port',
    web({ expose: { a: { port: 53, protocol: 'grpc' }, b: { port: 53, protocol: 'dns' } } }),
    'seed.expose.b.port: port 53/tcp is already used by seed.expose.a',
  ],
  [
    'two entries making one Service port name',
    web({ expose: { x: { port: 53, protocol: 'dns' }, 'x-tcp': 8080 } }),
    'seed.expose.x-tcp: Service port name "x-tcp" is already used by seed.expose.x',
  ],
  [
    'an unknown seed option',
    web({ sise: 'm' }),
    'seed.sise: unknown option',
    'size, expose, storage',
  ],
  ['seed.meta given back', web({ meta: {} }), 'seed.meta: unknown option'],
  [
    'an unknown expose attribute',
    web({ expose: { http: { prot: 80 } } }),
    'seed.expose.http.prot: unknown option (valid: port, protocol)',
  ],
  [
    'an unknown storage attribute',
    web({ storage: { data: { size: '1Gi', path: '/x' } } }),
    'seed.storage.data.path: unknown option',
  ],
  [
    'an unknown connect attribute',
    web({ connect: { db: { host: 'x' } } }),
    'seed.connect.db.host: unknown option',
  ],
  [
    'an unknown shoot attribute',
    web({ shoot: { enabled: true } }),
    'seed.shoot.enabled: unknown option',
  ],
  [
    'strategy and rollout disagreeing',
    web({ rollout: 'rolling', strategy: 'recreate' }),
    'seed.strategy: "recreate" conflicts with seed.rollout = "rolling"',
  ],
  [
    'an unknown rollout',
    web({ rollout: 'blue-green' }),
    'seed.rollout: unknown rollout "blue-green" (expected one of recreate, rolling)',
  ],
  ['an unknown strategy', web({ strategy: 'fast' }), 'seed.strategy: unknown rollout "fast"'],
  [
    'shoot = true',
    web({ shoot: true }),
    'seed.shoot: expected { enable = true; } or { enable = false; }, got true',
  ],
  [
    'shoot.enable = "yes"',
    web({ shoot: { enable: 'yes' } }),
    'seed.shoot.enable: expected true or false, got "yes"',
  ],
  ['tpm = "yes"', web({ tpm: 'yes' }), 'seed.tpm: expected true or false, got "yes"'],
  ['an empty service', web({ connect: { db: '' } }), 'seed.connect.db.service: must not be empty'],
  [
    'a service that is no DNS name',
    web({ connect: { db: 'Post Gres' } }),
    'seed.connect.db.service: "Post Gres" is not a DNS name',
  ],
  [
    'a connect attrset without service',
    web({ connect: { db: { port: 5432 } } }),
    'seed.connect.db.service: missing',
  ],
  [
    'a connect port 0',
    web({ connect: { db: { service: 'postgres', port: 0 } } }),
    'seed.connect.db.port: 0 is not a port number',
  ],
  ['a connect number', web({ connect: { db: 5432 } }), 'seed.connect.db: expected a service name'],
  ['an upper-case name', { name: 'Web' }, 'name: "Web" is not a valid instance name'],
  ['a name with _', { name: 'my_web' }, 'name: "my_web" is not a valid instance name'],
  ['a name starting with -', { name: '-web' }, 'name: "-web" is not a valid instance name'],
  [
    'a name of 64 characters',
    { name: 'a'.repeat(64) },
    `name: "${'a'.repeat(64)}" is not a valid instance name`,
  ],
  ['an empty name', { name: '' }, 'name: "" is not a valid instance name'],
  ['a name starting with a digit', { name: '1web' }, 'name: "1web" is not a valid instance name'],
  ['an empty system', { name: 'web', system: '' }, 'system: expected a Nix system'],
  [
    'seed that is not an attrset',
    web(['size']),
    'seed: expected an attribute set of seed.* options',
  ],
];

describe('meta.nix accepts every form of the seed.* options', () => {
  let results: CaseResult[] = [];

  beforeAll(async () => {
    results = await evalCases(accepted.map(([, args]) => args));
  });

  it.each(accepted.map(([description, args, meta], index) => ({ description, args, meta, index })))(
    '$description',
    ({ index, meta }) => {
      const result = results[index];
      expect(result?.ok).toBe(true);
      expect(result?.meta).toEqual(meta);
    },
  );

  it.each(accepted.map(([description], index) => ({ description, index })))(
    'is idempotent: $description',
    ({ index }) => {
      const result = results[index];
      expect(result?.again).toEqual(result?.meta);
    },
  );
});

describe('meta.nix rejects bad options with a message that starts with the option path', () => {
  const stderrs = new Map<number, string | null>();

  beforeAll(async () => {
    const outputs = await mapLimited(rejected, 6, ([, args]) => evalError(args));
    outputs.forEach((stderr, index) => stderrs.set(index, stderr));
  });

  it.each(
    rejected.map(([description, args, start, more], index) => ({
      description,
      args,
      start,
      more,
      index,
    })),
  )('$description', ({ index, start, more }) => {
    const stderr = stderrs.get(index);
    expect(stderr).not.toBeNull();
    // "error: <path>: <message>", whatever nix prints around it.
    expect(stderr).toContain(`error: ${start}`);
    if (more !== undefined) expect(stderr).toContain(more);
  });

  it('fails as a whole: reading only meta.name of an invalid seed throws too', async () => {
    const stderr = await nixFailure([
      '--eval',
      '--expr',
      `(import ${JSON.stringify(META_NIX)} { name = "web"; seed.expose.http = 0; }).name`,
    ]);
    expect(stderr).toContain('error: seed.expose.http.port: 0 is not a port number');
  });

  it('every rejected case also fails under builtins.tryEval (a catchable throw)', async () => {
    const results = await evalCases(rejected.map(([, args]) => args));
    expect(results.map((result) => result.ok)).toEqual(rejected.map(() => false));
  });
});
