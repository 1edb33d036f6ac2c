# What every Seed instance gets: a NixOS system booted by its own init inside a Kata
# microVM (Kata supplies kernel, initrd, network and DNS), wired to the platform through
# the `seed.*` options.
#
# Everything below reads `config.seed.meta` rather than the raw options: the meta is
# validated as a whole by ../meta.nix, so a seed with a bad port or name cannot even
# produce a toplevel, whichever attribute of the flake is built.
{ config, lib, pkgs, ... }:

let
  meta = config.seed.meta;

  seed-shoot = pkgs.callPackage ../seed-shoot.nix { };

  exposed = lib.attrValues meta.expose;
  # dns is served on both transports, udp only on UDP, every other protocol on TCP.
  tcpPorts = map (e: e.port) (lib.filter (e: e.protocol != "udp") exposed);
  udpPorts = map (e: e.port) (lib.filter (e: e.protocol == "udp" || e.protocol == "dns") exposed);

  # seed.connect.my-db → SEED_MY_DB_HOST (keys are [a-z0-9-], so this is one-to-one).
  hostVariable = key: "SEED_${lib.toUpper (lib.replaceStrings [ "-" ] [ "_" ] key)}_HOST";
  connectFile = c: if c.port == null then c.service else "${c.service}:${toString c.port}";
in
{
  imports = [ ./options.nix ./secrets.nix ];

  # No kernel, initrd, bootloader or hardware scan: Kata boots the VM and starts the
  # image's entrypoint (this system's init) in it.
  boot.isContainer = true;

  # Kata configures the interface from the pod network; DHCP inside would fight it.
  networking.useDHCP = lib.mkDefault false;

  system.stateVersion = lib.mkDefault "25.11";

  # The pod's log (`seed logs`, `kubectl logs`) is what the container's console says:
  # NixOS's journald forwards every message there (ForwardToConsole, TTYPath), as the
  # original Seed did, so the instance's journal is its log.
  services.journald.console = lib.mkDefault "/dev/console";

  # Kubernetes injects the pod's environment (SEED_NAMESPACE, SEED_INSTANCE,
  # SEED_NODE_IP, SEED_SHOOT_URL, the SEED_<NAME>_HOST connect variables, the
  # KUBERNETES_* service variables) into the container's first process only: NixOS's
  # init, which runs this activation before it starts systemd with a clean
  # environment. Keep a copy for units: `EnvironmentFile=/run/seed/env`.
  #
  # The file is written as KEY="value" with \ " $ ` escaped, which both systemd's
  # EnvironmentFile= and a shell's `.` read back unchanged. A later activation whose
  # PID 1 (systemd) no longer carries those variables keeps the existing file.
  system.activationScripts.seed-env = {
    deps = [ ];
    text = ''
      (
        mkdir -p /run/seed
        chmod 0755 /run/seed
        tmp=$(mktemp /run/seed/.env.XXXXXX)
        chmod 0600 "$tmp"
        found=0
        if [ -r /proc/1/environ ]; then
          while IFS= read -r -d "" entry || [ -n "$entry" ]; do
            name=''${entry%%=*}
            value=''${entry#*=}
            case "$name" in
              SEED_* | KUBERNETES_*) ;;
              *) continue ;;
            esac
            # Only names a shell and systemd accept as variables.
            [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
            value=''${value//\\/\\\\}
            value=''${value//\"/\\\"}
            value=''${value//\$/\\\$}
            value=''${value//\`/\\\`}
            printf '%s="%s"\n' "$name" "$value" >> "$tmp"
            found=$((found + 1))
          done < /proc/1/environ
        fi
        if [ "$found" -gt 0 ] || [ ! -e /run/seed/env ]; then
          mv -f "$tmp" /run/seed/env
        else
          rm -f "$tmp"
        fi
      )
    '';
  };

  # Only the declared ports are reachable from the pod network.
  networking.firewall.allowedTCPPorts = tcpPorts;
  networking.firewall.allowedUDPPorts = udpPorts;

  # Service discovery: the same names the Deployment sets as pod env, for login
  # shells and anything started outside /run/seed/env, plus one file per connection.
  environment.variables = lib.mapAttrs' (key: c: lib.nameValuePair (hostVariable key) c.service) meta.connect;
  environment.etc = lib.mapAttrs' (key: c: lib.nameValuePair "seed/connect/${key}" { text = connectFile c; }) meta.connect;

  environment.systemPackages = lib.mkIf meta.shoot.enable [ seed-shoot ];
}
