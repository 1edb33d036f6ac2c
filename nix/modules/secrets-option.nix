# The `seed.secrets` option alone (modules/secrets.nix does the rest): also declared by
# the offline evaluation (nix/offline.nix), where an instance with secrets must still
# evaluate to its meta (`tpm = true`) without NixOS around it.
{ lib, ... }:

let
  inherit (lib) mkOption types;

  secretEntry = types.submodule {
    options = {
      file = mkOption {
        type = types.path;
        description = "The sops-encrypted file in the flake (any format sops reads).";
      };
      owner = mkOption { type = types.str; default = "root"; };
      group = mkOption { type = types.str; default = "root"; };
      mode = mkOption {
        type = types.strMatching "[0-7]{3,4}";
        default = "0400";
      };
    };
  };
in
{
  options.seed.secrets = mkOption {
    type = types.attrsOf (types.coercedTo types.path (file: { inherit file; }) secretEntry);
    default = { };
    example = lib.literalExpression ''{ db-password = ./secrets/db-password.yaml; tls = { file = ./secrets/tls.json; owner = "nginx"; mode = "0440"; }; }'';
    description = ''
      Secrets decrypted at activation to `/run/secrets/<name>`: a sops file, or
      `{ file; owner; group; mode; }` (default root, root, 0400). Encrypt them to the
      instance's recipient (`seed keys <flake> <instance>`).
    '';
  };
}
