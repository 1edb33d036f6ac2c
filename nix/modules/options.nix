# The `seed.*` options: the platform glue inside an instance module (ARCHITECTURE.md,
# "The seed.* options").
#
# The types here only do what the module system is good at: coercing the short forms
# (`expose.http = 8080`, `storage.data = "1Gi"`, `connect.db = "postgres"`) into
# attribute sets, filling defaults and merging definitions from several modules. Every
# rule about values (tiers, protocols, quantities, names, port clashes) lives in
# ../meta.nix, which `seed.meta` calls; instance-base.nix reads its firewall ports and
# connect files from `seed.meta`, so no instance builds without passing those rules.
# That is why tiers, rollouts and protocols are typed as plain strings and ports as plain
# integers here: a bad value gets meta.nix's message (`seed.size: unknown tier "xxl" ...`,
# `seed.expose.http.port: 70000 is not a port number (1-65535)`), the same one the
# builder reports for any flake, rather than types.port's (which would also let 0 through
# to meta.nix). A value of the wrong kind (a string for a port) is the module system's to
# report.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption types;

  cfg = config.seed;

  exposeEntry = types.submodule {
    options = {
      port = mkOption {
        type = types.int;
        description = "Port the instance listens on; the Service uses the same port.";
      };
      protocol = mkOption {
        type = types.str;
        default = "http";
        description = ''
          One of `tcp`, `udp`, `dns` (TCP and UDP), `http`, `grpc`. Everything but `udp`
          is served over TCP.
        '';
      };
    };
  };

  # A function module: `name` is the attribute name under seed.storage, which gives the
  # default mount point.
  storageEntry = types.submodule ({ name, ... }: {
    options = {
      size = mkOption {
        type = types.str;
        example = "10Gi";
        description = ''Size of the persistent volume, a Kubernetes quantity such as "1Gi".'';
      };
      mountPoint = mkOption {
        type = types.str;
        default = "/seed/storage/${name}";
        defaultText = lib.literalExpression ''"/seed/storage/<name>"'';
        description = "Absolute path where the volume is mounted inside the instance.";
      };
    };
  });

  connectEntry = types.submodule {
    options = {
      service = mkOption {
        type = types.str;
        example = "postgres";
        description = "DNS name of the service to reach (a Service in the flake's namespace, or a longer name).";
      };
      port = mkOption {
        type = types.nullOr types.int;
        default = null;
        description = "Port of the service, if the instance should be told one.";
      };
    };
  };

  # Submodule values carry the module system's `_module` attribute; meta.nix would
  # ignore it, but the value handed over should be just the user's options.
  entriesOf = lib.mapAttrs (_: entry: removeAttrs entry [ "_module" ]);
in
{
  imports = [
    # The original Seed called the option `seed.strategy`; both names set one value.
    (lib.mkAliasOptionModule [ "seed" "strategy" ] [ "seed" "rollout" ])
  ];

  options.seed = {
    size = mkOption {
      type = types.str;
      default = "s";
      description = ''
        Size tier of the microVM: `xs` 1 vCPU/512 MiB, `s` 1/1024, `m` 2/2048,
        `l` 4/4096, `xl` 8/8192.
      '';
    };

    expose = mkOption {
      type = types.attrsOf (types.coercedTo types.int (port: { inherit port; }) exposeEntry);
      default = { };
      example = lib.literalExpression ''{ http = 8080; dns = { port = 53; protocol = "dns"; }; }'';
      description = ''
        Ports to expose through the instance's Kubernetes Service and open in the guest
        firewall: a port number (protocol `http`) or `{ port; protocol; }`. Names are at
        most 11 characters (they become Service port names; `dns` adds `-tcp`/`-udp`).
      '';
    };

    storage = mkOption {
      type = types.attrsOf (types.coercedTo types.str (size: { inherit size; }) storageEntry);
      default = { };
      example = lib.literalExpression ''{ data = "1Gi"; db = { size = "10Gi"; mountPoint = "/var/lib/postgresql"; }; }'';
      description = ''
        Persistent volumes: a size or `{ size; mountPoint; }`, mounted at
        `/seed/storage/<name>` by default. Seed never deletes them.
      '';
    };

    connect = mkOption {
      type = types.attrsOf (types.coercedTo types.str (service: { inherit service; }) connectEntry);
      default = { };
      example = lib.literalExpression ''{ db = { service = "postgres"; port = 5432; }; cache = "redis"; }'';
      description = ''
        Services this instance talks to: a service name or `{ service; port; }`. Each
        sets `$SEED_<NAME>_HOST` (upper-case, `-` becomes `_`) to the service and writes
        `/etc/seed/connect/<name>` containing `service` or `service:port`.
      '';
    };

    rollout = mkOption {
      type = types.str;
      default = "recreate";
      description = ''
        Deployment strategy: `recreate` (stop, then start) or `rolling` (surge 1,
        unavailable 0, TCP readiness probe on the first non-UDP port). Alias:
        `seed.strategy`.
      '';
    };

    shoot.enable = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Allow this instance to run shoots (ephemeral microVMs sharing its store and
        volumes): puts `seed-shoot` on PATH and `SEED_SHOOT_URL` in the environment.
      '';
    };

    meta = mkOption {
      type = types.attrs;
      readOnly = true;
      description = ''
        The instance's metadata as the platform reads it (`seeds.<name>.meta`),
        computed and validated by nix/meta.nix from the options above.
      '';
      defaultText = lib.literalExpression ''
        import ./meta.nix {
          name = config.networking.hostName;
          system = pkgs.stdenv.hostPlatform.system;
          seed = { inherit (config.seed) size expose storage connect rollout shoot; tpm = config.seed.secrets != { }; };
        }
      '';
      default = import ../meta.nix {
        name = config.networking.hostName;
        system = pkgs.stdenv.hostPlatform.system;
        seed = {
          inherit (cfg) size rollout;
          expose = entriesOf cfg.expose;
          storage = entriesOf cfg.storage;
          connect = entriesOf cfg.connect;
          shoot = { inherit (cfg.shoot) enable; };
          # An instance with secrets gets a TPM (modules/secrets-option.nix declares the option).
          tpm = cfg ? secrets && cfg.secrets != { };
        };
      };
    };
  };
}
