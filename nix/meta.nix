# Seed instance metadata: the one place where `seed.*` options are validated.
#
#   import ./meta.nix { name = "web"; system = "x86_64-linux"; seed = { expose.http = 8080; }; }
#
# returns exactly the meta JSON shape of ARCHITECTURE.md (every key always present):
#
#   { name; system; size; resources = { vcpus; memory; };
#     expose.<k> = { port; protocol; }; storage.<k> = { size; mountPoint; };
#     connect.<k> = { service; port; }; rollout; shoot = { enable; }; tpm; }
#
# `tpm` (bool) is not a user option: modules/options.nix sets it from `seed.secrets`
# (an instance with secrets needs its TPM; docs/secrets.md).
#
# Why a plain function over builtins instead of NixOS module types:
#   * the builder, the tests and `lib.seedMeta` evaluate it offline, without nixpkgs;
#   * the NixOS option `seed.meta` (modules/options.nix) calls it too, so a seed that
#     evaluates through `mkSeed` and one fed here directly give the same answer, and
#     each rule (and its error message) is written down once.
#
# Input forms: the raw forms a user writes (`expose.http = 8080`, `storage.data = "1Gi"`,
# `connect.db = "postgres"`) and the already-coerced forms the module system produces
# (`{ port; protocol; }`, `{ size; mountPoint; }`, `{ service; port; }`, submodule values
# that carry a `_module` attribute). Coercion is idempotent: feeding a meta's own
# expose/storage/connect/size/rollout/shoot back in gives the same meta.
#
# Errors: every error is a `throw` whose message starts with the option path, e.g.
#   seed.size: unknown tier "xxl" (expected one of xs, s, m, l, xl)
#   seed.expose.http.port: 70000 is not a port number (1-65535)
# The result is deep-forced before it is returned, so touching any attribute of the
# meta validates all of it (an instance never half-validates).
{ name, system ? "x86_64-linux", seed ? { } }:

let
  inherit (builtins)
    attrNames concatMap concatStringsSep elem filter foldl' fromJSON head isAttrs isBool isInt
    isList isString length mapAttrs match stringLength toJSON typeOf;

  # ---------------------------------------------------------------------------
  # The platform's vocabulary. Keep in step with ARCHITECTURE.md.

  # vCPUs and MiB of memory per size tier (the Kata VM's default_vcpus/default_memory).
  tiers = {
    xs = { vcpus = 1; memory = 512; };
    s = { vcpus = 1; memory = 1024; };
    m = { vcpus = 2; memory = 2048; };
    l = { vcpus = 4; memory = 4096; };
    xl = { vcpus = 8; memory = 8192; };
  };
  # attrNames would sort these alphabetically; messages list them smallest first.
  tierNames = [ "xs" "s" "m" "l" "xl" ];

  protocols = [ "tcp" "udp" "dns" "http" "grpc" ];
  rollouts = [ "recreate" "rolling" ];

  # Which L4 transports a protocol occupies: two expose entries may share a port
  # number only on different transports (e.g. 53/tcp for grpc next to 53/udp for udp).
  transportsOf = protocol:
    if protocol == "dns" then [ "tcp" "udp" ]
    else if protocol == "udp" then [ "udp" ]
    else [ "tcp" ];

  # Kubernetes Service port names of an expose entry; dns needs one per transport.
  portNamesOf = key: protocol:
    if protocol == "dns" then [ "${key}-tcp" "${key}-udp" ] else [ key ];

  # Service port names are IANA service names: at most 15 characters and no "--".
  # dns appends "-tcp"/"-udp" (4 characters), so every expose key must fit in 11.
  exposeKeyLimit = {
    max = 11;
    noDoubleDash = true;
    why = "expose names become Kubernetes Service port names, which are limited to 15 characters, and dns adds -tcp/-udp";
  };
  # Storage keys name a volume and a PVC, connect keys an environment variable:
  # a DNS label's 63 characters is plenty.
  labelKeyLimit = { max = 63; why = "names are used as Kubernetes DNS labels"; };

  # What one instance may ask of a shared cluster: META_LIMITS of packages/contracts
  # (meta.ts), which the services check again; here the user sees the option's name.
  metaLimits = {
    exposeEntries = 16;
    storageEntries = 8;
    connectEntries = 32;
    storageBytes = 16 * 1024 * 1024 * 1024 * 1024; # 16Ti
  };

  # Keys of expose/storage/connect end up in Kubernetes names (Service ports, PVCs
  # `seed-<name>-<key>`, volume names) and in `SEED_<KEY>_HOST`: start with a letter,
  # lower-case letters, digits and "-", no trailing "-".
  keyRegex = "[a-z]([-a-z0-9]*[a-z0-9])?";
  keyRule = ''lower-case letters, digits and "-", starting with a letter and not ending with "-"'';

  # A DNS-1123 label, the building block of DNS names.
  labelRegex = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
  # The instance name becomes a Deployment and Service name and the hostname. Service
  # names are DNS-1035 labels: a DNS-1123 label that starts with a letter.
  instanceNameRegex = "[a-z]([-a-z0-9]*[a-z0-9])?";

  # A service to connect to: a DNS name ("postgres", "db.other-ns.svc.cluster.local").
  dnsNameRegex = "${labelRegex}(\\.${labelRegex})*";

  # Kubernetes resource.Quantity as used for PVC sizes ("1Gi", "500Mi", "10G", "1.5Gi").
  quantityRegex = "[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?";
  zeroQuantityRegex = "0+(\\.0+)?[A-Za-z]*";
  quantityFactors = {
    "" = 1; k = 1000; M = 1000000; G = 1000000000; T = 1000000000000;
    P = 1000000000000000; E = 1000000000000000000;
    Ki = 1024; Mi = 1048576; Gi = 1073741824; Ti = 1099511627776;
    Pi = 1125899906842624; Ei = 1152921504606846976;
  };
  # Bytes of a quantity that matched quantityRegex (a float when it has a fraction).
  quantityBytes = v:
    let parts = match "([0-9]+(\\.[0-9]+)?)([A-Za-z]*)" v; in
    fromJSON (head parts) * quantityFactors.${builtins.elemAt parts 2};

  # ---------------------------------------------------------------------------
  # Error reporting.

  # A value as it would be written in Nix, for messages. Never forces a store copy
  # (paths) and never fails (functions, attribute sets).
  show = v:
    if isString v || isInt v || isBool v || v == null || builtins.isFloat v then toJSON v
    else if builtins.isPath v then toString v
    else if isAttrs v then "an attribute set"
    else if isList v then "a list"
    else "a ${typeOf v}";

  # An option path as NixOS prints it: seed.expose.http.port, seed.storage."my.data".
  showPath = path:
    concatStringsSep "." (map (k: if match "[A-Za-z_][A-Za-z0-9_'-]*" k != null then k else toJSON k) path);

  # Every error goes through here so each message starts with the option path.
  fail = path: message: throw "${showPath path}: ${message}";

  matches = regex: v: isString v && match regex v != null;

  # Attributes the module system adds to submodule values; not user options.
  internalAttrs = [ "_module" ];

  # Unknown attributes are errors (a typo like `seed.sise` must not be silently
  # ignored). Returns the attrset without internal attributes.
  onlyKnown = path: known: attrs:
    let
      unknown = filter (k: !(elem k known) && !(elem k internalAttrs)) (attrNames attrs);
    in
    if unknown == [ ] then removeAttrs attrs internalAttrs
    else fail (path ++ [ (head unknown) ]) "unknown option (valid: ${concatStringsSep ", " known})";

  # `value` must be one of `allowed` (strings); `what` names the kind in the message.
  oneOf = path: what: allowed: v:
    if isString v && elem v allowed then v
    else fail path "unknown ${what} ${show v} (expected one of ${concatStringsSep ", " allowed})";

  # Applies `f path key value` to every entry of an attrset option, after checking
  # the option itself is an attrset of at most `most` entries (named `what` in the
  # message) and each key is a valid name within `limit`.
  entries = path: limit: most: what: f: v:
    if !isAttrs v then
      fail path "expected an attribute set of entries, got ${show v}"
    else if length (attrNames v) > most then
      fail path "${toString (length (attrNames v))} entries; at most ${toString most} ${what} entries per instance (Seed's limit)"
    else
      mapAttrs (key: value:
        # seq: the key is checked even though the normalised entry never looks at it.
        builtins.seq (checkKey (path ++ [ key ]) limit key) (f (path ++ [ key ]) key value)) v;

  # limit = { max; why; }: the longest key allowed and the reason, for the message.
  checkKey = path: limit: key:
    if !(matches keyRegex key) then
      fail path "invalid name ${toJSON key} (${keyRule})"
    else if stringLength key > limit.max then
      fail path "name ${toJSON key} is ${toString (stringLength key)} characters long; at most ${toString limit.max} are allowed (${limit.why})"
    else if limit.noDoubleDash or false && match ".*--.*" key != null then
      fail path "invalid name ${toJSON key} (it becomes a Kubernetes Service port name, which may not contain \"--\")"
    else key;

  # Fails at the first item of `items` (a list of { path; owner; value; }) whose `value`
  # an earlier item already had, naming that item's `owner`; `describe item` says what
  # clashed. Used for port, Service port name and mount point clashes.
  firstDuplicate = describe: items:
    let
      step = seen: item:
        if seen ? ${item.value} then
          fail item.path "${describe item} is already used by ${showPath seen.${item.value}}"
        else seen // { ${item.value} = item.owner; };
    in
    foldl' step { } items;

  # ---------------------------------------------------------------------------
  # Scalars.

  checkPort = path: v:
    if isInt v && v >= 1 && v <= 65535 then v
    else fail path "${show v} is not a port number (1-65535)";

  checkQuantity = path: v:
    if !(matches quantityRegex v) then
      fail path ''${show v} is not a Kubernetes quantity such as "1Gi"''
    else if match zeroQuantityRegex v != null then
      fail path "${show v} is zero; a volume needs a size such as \"1Gi\""
    else if quantityBytes v > metaLimits.storageBytes then
      fail path "${show v} is larger than 16Ti, Seed's limit per volume"
    else v;

  # A mount point must be absolute and normalised: the same directory must not be
  # spelled two ways (duplicate detection compares strings) and "/" would hide the OS.
  checkMountPoint = path: v:
    if !(isString v) || match "/.*" v == null then
      fail path ''${show v} is not an absolute path such as "/var/lib/data"''
    else if v == "/" then
      fail path ''"/" would hide the whole file system; use a directory such as "/var/lib/data"''
    else if match "(/[^/]+)+" v == null || match "(.*/)?\\.\\.?(/.*)?" v != null then
      fail path ''${show v} is not a normalised path (no trailing or double "/", no "." or ".." parts)''
    else v;

  checkService = path: v:
    if !(isString v) then
      fail path "expected a service name, got ${show v}"
    else if v == "" then
      fail path "must not be empty"
    else if !(matches dnsNameRegex v) || stringLength v > 253 then
      fail path ''${show v} is not a DNS name such as "postgres" or "db.other-namespace.svc"''
    else v;

  checkName = v:
    if matches instanceNameRegex v && stringLength v <= 63 then v
    else fail [ "name" ] ''${show v} is not a valid instance name (lower-case letters, digits and "-", starting with a letter and ending with a letter or digit, at most 63 characters: it names a Kubernetes Service)'';

  checkSystem = v:
    if isString v && v != "" then v
    else fail [ "system" ] ''expected a Nix system such as "x86_64-linux", got ${show v}'';

  # ---------------------------------------------------------------------------
  # Options. Each `norm*` takes the raw or coerced value and returns the meta form.

  seedPath = [ "seed" ];
  seedOptions = [ "size" "expose" "storage" "connect" "rollout" "strategy" "shoot" "tpm" ];

  cfg =
    if isAttrs seed then onlyKnown seedPath seedOptions seed
    else fail seedPath "expected an attribute set of seed.* options, got ${show seed}";

  size = oneOf (seedPath ++ [ "size" ]) "tier" tierNames (cfg.size or "s");

  # seed.expose.<key> = 8080  |  { port; protocol ? "http"; }
  normExpose = path: key: v:
    if isInt v then
      { port = checkPort (path ++ [ "port" ]) v; protocol = "http"; }
    else if isAttrs v then
      let e = onlyKnown path [ "port" "protocol" ] v; in
      {
        port =
          if e ? port then checkPort (path ++ [ "port" ]) e.port
          else fail (path ++ [ "port" ]) "missing; set a port number (1-65535)";
        protocol = oneOf (path ++ [ "protocol" ]) "protocol" protocols (e.protocol or "http");
      }
    else fail path "${show v} is not a port number (1-65535) or { port; protocol; }";

  exposePath = seedPath ++ [ "expose" ];
  expose = entries exposePath exposeKeyLimit metaLimits.exposeEntries "expose" normExpose (cfg.expose or { });

  # Two entries on the same port and transport cannot both be served; neither can two
  # entries that would produce the same Service port name (a dns entry "x" makes
  # "x-tcp", which a second entry could also be called).
  exposeChecks =
    let
      keys = attrNames expose; # sorted, so the reported clash is deterministic
      bindings = concatMap (key:
        map (transport: {
          path = exposePath ++ [ key "port" ];
          owner = exposePath ++ [ key ];
          value = "${toString expose.${key}.port}/${transport}";
        }) (transportsOf expose.${key}.protocol)) keys;
      portNames = concatMap (key:
        map (portName: {
          path = exposePath ++ [ key ];
          owner = exposePath ++ [ key ];
          value = portName;
        }) (portNamesOf key expose.${key}.protocol)) keys;
    in
    [
      (firstDuplicate (item: "port ${item.value}") bindings)
      (firstDuplicate (item: "Service port name ${toJSON item.value}") portNames)
    ];

  # seed.storage.<key> = "1Gi"  |  { size; mountPoint ? "/seed/storage/<key>"; }
  normStorage = path: key: v:
    let defaultMount = "/seed/storage/${key}"; in
    if isString v then
      { size = checkQuantity (path ++ [ "size" ]) v; mountPoint = defaultMount; }
    else if isAttrs v then
      let s = onlyKnown path [ "size" "mountPoint" ] v; in
      {
        size =
          if s ? size then checkQuantity (path ++ [ "size" ]) s.size
          else fail (path ++ [ "size" ]) ''missing; set a Kubernetes quantity such as "1Gi"'';
        mountPoint = checkMountPoint (path ++ [ "mountPoint" ]) (s.mountPoint or defaultMount);
      }
    else fail path ''expected a size such as "1Gi" or { size; mountPoint; }, got ${show v}'';

  storagePath = seedPath ++ [ "storage" ];
  storage = entries storagePath labelKeyLimit metaLimits.storageEntries "storage" normStorage (cfg.storage or { });

  storageChecks = [
    (firstDuplicate (item: "mount point ${toJSON item.value}") (map (key: {
      path = storagePath ++ [ key "mountPoint" ];
      owner = storagePath ++ [ key ];
      value = storage.${key}.mountPoint;
    }) (attrNames storage)))
  ];

  # seed.connect.<key> = "postgres"  |  { service; port ? null; }
  normConnect = path: key: v:
    if isString v then
      { service = checkService (path ++ [ "service" ]) v; port = null; }
    else if isAttrs v then
      let c = onlyKnown path [ "service" "port" ] v; in
      {
        service =
          if c ? service then checkService (path ++ [ "service" ]) c.service
          else fail (path ++ [ "service" ]) "missing; set the name of the service to connect to";
        port = if (c.port or null) == null then null else checkPort (path ++ [ "port" ]) c.port;
      }
    else fail path ''expected a service name such as "postgres" or { service; port; }, got ${show v}'';

  connect = entries (seedPath ++ [ "connect" ]) labelKeyLimit metaLimits.connectEntries "connect" normConnect (cfg.connect or { });

  # seed.rollout, with seed.strategy as an alias (the original Seed's name for it).
  # Through the module system the alias is already folded into rollout; raw input may
  # carry both, which is fine only when they agree.
  rollout =
    let
      fromRollout = oneOf (seedPath ++ [ "rollout" ]) "rollout" rollouts cfg.rollout;
      fromStrategy = oneOf (seedPath ++ [ "strategy" ]) "rollout" rollouts cfg.strategy;
    in
    if cfg ? rollout && cfg ? strategy then
      (if fromRollout == fromStrategy then fromRollout
       else fail (seedPath ++ [ "strategy" ]) "${show fromStrategy} conflicts with seed.rollout = ${show fromRollout} (seed.strategy is an alias of seed.rollout; set only one)")
    else if cfg ? rollout then fromRollout
    else if cfg ? strategy then fromStrategy
    else "recreate";

  # seed.shoot = { enable ? false; }
  shoot =
    let
      path = seedPath ++ [ "shoot" ];
      v = cfg.shoot or { };
      s = onlyKnown path [ "enable" ] v;
      enable = s.enable or false;
    in
    if !isAttrs v then fail path "expected { enable = true; } or { enable = false; }, got ${show v}"
    else if !isBool enable then fail (path ++ [ "enable" ]) "expected true or false, got ${show enable}"
    else { inherit enable; };

  # seed.tpm = true when the instance has secrets: the platform gives it a TPM.
  tpm =
    let v = cfg.tpm or false; in
    if isBool v then v
    else fail (seedPath ++ [ "tpm" ]) "expected true or false, got ${show v}";

  meta = {
    name = checkName name;
    system = checkSystem system;
    inherit size;
    resources = tiers.${size};
    inherit expose storage connect rollout shoot tpm;
  };

  checks = exposeChecks ++ storageChecks;
in
# Force every check and every leaf now: an invalid seed fails as a whole, wherever
# the meta is first touched (nix eval of .meta, or instance-base reading the ports).
builtins.deepSeq checks (builtins.deepSeq meta meta)
