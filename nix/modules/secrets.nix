# `seed.secrets`: sops files in the flake, decrypted at activation with the instance's
# TPM-sealed age identity into /run/secrets/<name> (docs/secrets.md).
#
# Only the encrypted files and a manifest of names, owners and modes reach the nix
# store; the plaintext exists only in /run (tmpfs) and in the pipe from sops. NixOS runs
# activation before systemd starts any service, so a unit that reads /run/secrets finds
# its files; a secret that is missing or does not decrypt fails activation with a
# message naming it, and the instance stops before any service starts (below).
{ config, lib, pkgs, ... }:

let
  secrets = config.seed.secrets;

  seed-secrets = pkgs.callPackage ../secrets/seed-secrets.nix { };

  # Where a failed install leaves its message (SEED_SECRETS_FAILURE).
  failureFile = "/run/seed/secrets-failed";

  # One line per secret; names are attribute names, checked to be file names below.
  manifest = builtins.toFile "seed-secrets" (lib.concatStrings (lib.mapAttrsToList
    (name: s: "${name} ${s.file} ${s.owner} ${s.group} ${s.mode}\n")
    secrets));
  badNames = lib.filter (name: builtins.match "[A-Za-z0-9_][A-Za-z0-9._-]*" name == null) (lib.attrNames secrets);
in
{
  imports = [ ./secrets-option.nix ];

  config = lib.mkIf (secrets != { }) {
    system.activationScripts.seed-secrets = {
      deps = [ "users" "groups" ];
      text =
        if badNames != [ ] then
          throw "seed.secrets: ${builtins.toJSON (builtins.head badNames)} is not a file name (letters, digits, . _ -)"
        else
          "SEED_SECRETS_FAILURE=${failureFile} ${seed-secrets}/bin/seed-secrets install ${manifest}";
    };

    # NixOS boots on after a failed activation script. An instance without its secrets
    # must not: before any service starts, this hands the message to Kubernetes (the
    # kubelet keeps /dev/termination-log as the container's termination message, which
    # the reconciler reports in `seed status`) and stops the instance with status 1
    # (systemd, the container's PID 1, exits: FailureAction). The pod never turns ready,
    # so a rolling update keeps the old pod serving.
    systemd.services.seed-secrets-failed = {
      description = "Stop the instance: a secret was not installed";
      wantedBy = [ "sysinit.target" ];
      before = [ "sysinit.target" ];
      unitConfig = {
        DefaultDependencies = false;
        ConditionPathExists = failureFile;
        FailureAction = "exit";
      };
      serviceConfig.Type = "oneshot";
      script = ''
        cat ${failureFile} > /dev/termination-log || true
        exit 1
      '';
    };
  };
}
