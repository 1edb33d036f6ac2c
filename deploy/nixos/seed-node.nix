# A Seed node: k3s whose containerd runs tenant pods in Kata Containers microVMs
# (RuntimeClass `kata`, deploy/manifests/runtimeclass.yaml), with the per-pod VM sizing
# annotations Seed renders allowed, and nix-snapshotter resolving `nix:0/nix/store/…`
# images from the node's store. The counterpart of the original Seed's `seed.enable`.
#
#   imports = [ ./deploy/nixos/seed-node.nix ];
#   services.seed-node.enable = true;
#
# Written against nixpkgs' own options (services.k3s, virtualisation.containerd,
# systemd, networking.firewall, environment.etc). k3s runs with the system containerd
# (--container-runtime-endpoint) rather than its embedded one, so the runtime, the
# snapshotter and the annotation rules are typed containerd settings, not a template.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.services.seed-node;

  snapshotterSocket = "/run/nix-snapshotter/nix-snapshotter.sock";

  # The only pod annotations Kata receives from Kubernetes, and the only ones it acts on:
  # the VM size packages/k8s-model renders from each seed's `resources`, and with
  # `kata.tpm` the instance's swtpm socket (docs/secrets.md, "Kata and the pod").
  vmAnnotations = [
    "default_vcpus"
    "default_memory"
  ]
  ++ lib.optional cfg.kata.tpm.enable "tpm_socket";

  kataConfigDir = "kata-containers";
  kataBaseConfig = "${cfg.kata.package}/share/defaults/kata-containers/configuration-${cfg.kata.hypervisor}.toml";

  hypervisorPackage =
    {
      qemu = pkgs.qemu_kvm;
      clh = pkgs.cloud-hypervisor;
    }
    .${cfg.kata.hypervisor};

  # k3s' flannel writes its CNI configuration here; the system containerd needs the
  # plugins it names.
  cniPlugins = pkgs.buildEnv {
    name = "seed-node-cni-plugins";
    paths = [
      pkgs.cni-plugins
      pkgs.cni-plugin-flannel
    ];
  };
in
{
  options.services.seed-node = {
    enable = lib.mkEnableOption "a Seed node: k3s with Kata Containers VM isolation and nix-snapshotter";

    role = lib.mkOption {
      type = lib.types.enum [
        "server"
        "agent"
      ];
      default = "server";
      description = "k3s role: a server runs the control plane and workloads, an agent joins `serverAddr`.";
    };

    serverAddr = lib.mkOption {
      type = lib.types.str;
      default = "";
      example = "https://10.0.0.1:6443";
      description = "k3s server to join (agents, and servers joining an existing cluster).";
    };

    tokenFile = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      description = "File holding the k3s cluster join token (kept out of the Nix store).";
    };

    extraFlags = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      description = "More k3s flags.";
    };

    disable = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [
        "traefik"
        "servicelb"
        "metrics-server"
      ];
      description = "k3s packaged components left out (server role). Seed needs none of them.";
    };

    kata = {
      package = lib.mkPackageOption pkgs "kata-runtime" { };

      hypervisor = lib.mkOption {
        type = lib.types.enum [
          "qemu"
          "clh"
        ];
        # Cloud Hypervisor is Seed's production hypervisor (the shoot pool's too); QEMU
        # stays a choice for hosts where it is the one that works.
        default = "clh";
        description = "Kata's hypervisor: Cloud Hypervisor, or QEMU.";
      };

      tpm = {
        enable = lib.mkOption {
          type = lib.types.bool;
          default = false;
          description = ''
            Give instances their TPMs: Kata attaches the swtpm named by the pod annotation
            `io.katacontainers.config.hypervisor.tpm_socket` (rendered for instances with
            `seed.secrets`) to the VM. Upstream Kata ignores that annotation:
            `kata.package` must be a Kata build whose Go runtime carries the change
            proposed upstream in kata-containers pull request 12641 ("runtime: add TPM
            socket annotation for Cloud Hypervisor vTPM support", open), which hands the
            socket to Cloud Hypervisor's TPM (a TPM 2.0 CRB device), as the original
            Seed's patched Kata did. Without it such an instance boots with no TPM and its
            activation fails (docs/secrets.md).
          '';
        };
        kernel = lib.mkOption {
          type = lib.types.nullOr lib.types.path;
          default = null;
          description = ''
            The guest kernel Kata boots, built with TPM drivers (`CONFIG_TCG_TPM`,
            `CONFIG_TCG_CRB`; the same pull request's kernel build flag `-T`, installed
            with a `-tpm` suffix). Kata's default guest kernel has none, so the VM would
            see no TPM. Required with `kata.tpm.enable`.
          '';
        };
      };
    };

    nixSnapshotter = {
      enable = lib.mkOption {
        type = lib.types.bool;
        default = true;
        description = ''
          Run nix-snapshotter as containerd's snapshotter and the kubelet's image service,
          so the `nix:0/nix/store/…` images Seed renders resolve from the node's store.
        '';
      };

      package = lib.mkPackageOption pkgs "nix-snapshotter" { };
    };

    shootPool.ports = lib.mkOption {
      type = lib.types.listOf lib.types.port;
      default = [
        7070
        7071
      ];
      description = ''
        The shoot pool's HTTP and gRPC ports (host network, see
        deploy/manifests/shoot-pool.yaml), opened to the pod network so instances reach
        `$SEED_SHOOT_URL` = `http://$(SEED_NODE_IP):7070`.
      '';
    };

    binaryCache = {
      url = lib.mkOption {
        type = lib.types.nullOr lib.types.str;
        default = null;
        example = "http://10.0.0.5:30081/nix-cache";
        description = ''
          The Seed builder's signed binary cache (deploy/manifests/builder.yaml, Service
          builder-cache on node port 30081; any node's IP, this one's included). Images are
          built in the builder's own store: nix-snapshotter fetches their closures from this
          cache, and from no other substituter. Null: images must already be in this
          node's store.
        '';
      };
      publicKey = lib.mkOption {
        type = lib.types.nullOr lib.types.str;
        default = null;
        example = "seed-cache-1:V52YqdONbw6PwIgQozsq7i1Mo3g4nGEb2uNlieNQ3dU=";
        description = ''
          The only key nix-snapshotter trusts for store paths it fetches
          (`nix key convert-secret-to-public < cache.sec`, the key of the Secret
          seed-builder-cache-key). A path unsigned or signed by another key is refused.
        '';
      };
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = (cfg.binaryCache.url == null) == (cfg.binaryCache.publicKey == null);
        message = "services.seed-node.binaryCache: set url and publicKey together";
      }
      {
        assertion = cfg.role == "server" || cfg.serverAddr != "";
        message = "services.seed-node: an agent needs serverAddr.";
      }
      {
        # The patch wires the annotation into Kata's Cloud Hypervisor driver only.
        assertion = !cfg.kata.tpm.enable || (cfg.kata.hypervisor == "clh" && cfg.kata.tpm.kernel != null);
        message = "services.seed-node.kata.tpm: needs kata.hypervisor = \"clh\" and a guest kernel with TPM drivers (kata.tpm.kernel)";
      }
    ];

    # Kata: the hypervisor needs KVM and vhost; the agent talks over vsock.
    boot.kernelModules = [
      "kvm-intel"
      "kvm-amd"
      "vhost_net"
      "vhost_vsock"
    ];
    boot.kernel.sysctl = {
      "net.ipv4.ip_forward" = 1;
      "net.ipv6.conf.all.forwarding" = 1;
    };
    # containerd (root) opens /dev/kvm for the hypervisor; the kvm group is NixOS' own.
    services.udev.extraRules = ''
      KERNEL=="kvm", GROUP="kvm", MODE="0660"
      KERNEL=="vhost-vsock", GROUP="kvm", MODE="0660"
    '';

    # Kata's upstream configuration for the chosen hypervisor, plus a drop-in allowing
    # Seed's annotations and nothing else (Kata reads config.d/ next to its configuration).
    environment.etc."${kataConfigDir}/configuration.toml".source = kataBaseConfig;
    environment.etc."${kataConfigDir}/config.d/50-seed-annotations.toml".text = ''
      # Seed sizes each instance's VM with pod annotations
      # io.katacontainers.config.hypervisor.{default_vcpus,default_memory}
      # (and attaches its TPM with ...tpm_socket when kata.tpm is enabled).
      [hypervisor.${cfg.kata.hypervisor}]
      enable_annotations = [${lib.concatMapStringsSep ", " (a: ''"${a}"'') vmAnnotations}]
      ${lib.optionalString (cfg.kata.tpm.kernel != null) ''kernel = "${cfg.kata.tpm.kernel}"''}
    '';

    virtualisation.containerd = {
      enable = true;
      settings = {
        plugins."io.containerd.grpc.v1.cri" = {
          cni = {
            bin_dir = "${cniPlugins}/bin";
            conf_dir = "/var/lib/rancher/k3s/agent/etc/cni/net.d";
          };
          containerd = {
            snapshotter = lib.mkIf cfg.nixSnapshotter.enable "nix";
            runtimes.kata = {
              runtime_type = "io.containerd.kata.v2";
              privileged_without_host_devices = true;
              # Pass only Seed's annotations through to Kata (containerd drops every
              # other pod annotation on the way to the shim).
              pod_annotations = map (a: "io.katacontainers.config.hypervisor.${a}") vmAnnotations;
              container_annotations = [ ];
              options.ConfigPath = "/etc/${kataConfigDir}/configuration.toml";
            };
          };
        };
        proxy_plugins = lib.mkIf cfg.nixSnapshotter.enable {
          nix = {
            type = "snapshot";
            address = snapshotterSocket;
          };
        };
      };
    };

    # The Kata shim and the hypervisor, found by containerd on its PATH.
    systemd.services.containerd.path = [
      cfg.kata.package
      hypervisorPackage
    ];

    systemd.services.nix-snapshotter = lib.mkIf cfg.nixSnapshotter.enable {
      description = "nix-snapshotter: containerd snapshotter and image service for nix store paths";
      wantedBy = [ "multi-user.target" ];
      before = [ "containerd.service" ];
      path = [ config.nix.package ];
      # Its `nix build /nix/store/…` substitutes from the builder's cache alone, trusting
      # only the builder's key (the lines substituterNixConfig of packages/nix-eval writes;
      # nix-snapshotter runs as root, a trusted user of the nix daemon).
      environment = lib.mkIf (cfg.binaryCache.url != null) {
        NIX_CONFIG = lib.concatStringsSep "\n" [
          "substituters = ${cfg.binaryCache.url}"
          "trusted-public-keys = ${cfg.binaryCache.publicKey}"
          "require-sigs = true"
          "narinfo-cache-negative-ttl = 0"
          "connect-timeout = 10"
        ];
      };
      serviceConfig = {
        ExecStart = "${cfg.nixSnapshotter.package}/bin/nix-snapshotter";
        RuntimeDirectory = "nix-snapshotter";
        StateDirectory = "nix-snapshotter";
        Restart = "always";
        Type = "simple";
      };
    };

    services.k3s = {
      enable = true;
      inherit (cfg) role;
      serverAddr = lib.mkIf (cfg.serverAddr != "") cfg.serverAddr;
      tokenFile = lib.mkIf (cfg.tokenFile != null) cfg.tokenFile;
      extraFlags = lib.concatLists [
        [ "--container-runtime-endpoint=unix:///run/containerd/containerd.sock" ]
        (lib.optional cfg.nixSnapshotter.enable "--image-service-endpoint=unix://${snapshotterSocket}")
        (lib.optionals (cfg.role == "server") (map (c: "--disable=${c}") cfg.disable))
        cfg.extraFlags
      ];
    };

    systemd.services.k3s = {
      after = [ "containerd.service" ] ++ lib.optional cfg.nixSnapshotter.enable "nix-snapshotter.service";
      requires = [ "containerd.service" ];
      wants = lib.optional cfg.nixSnapshotter.enable "nix-snapshotter.service";
    };

    networking.firewall = {
      allowedTCPPorts = [ 10250 ] ++ lib.optional (cfg.role == "server") 6443;
      allowedUDPPorts = [ 8472 ]; # flannel VXLAN
      # Instances (Kata VMs on the pod network) call their node's shoot pool.
      interfaces.cni0.allowedTCPPorts = cfg.shootPool.ports;
    };
  };
}
