# seed-secrets, the instance side of Seed's secrets: the script of seed-secrets.sh with
# nixpkgs' tpm2-tools, age and sops (docs/secrets.md).
#
# callPackage-able; writeShellApplication runs shellcheck on the script when it builds.
{ writeShellApplication, tpm2-tools, age, sops, coreutils, gnugrep, gnused }:

writeShellApplication {
  name = "seed-secrets";
  runtimeInputs = [ tpm2-tools age sops coreutils gnugrep gnused ];
  text = builtins.readFile ./seed-secrets.sh;
}
