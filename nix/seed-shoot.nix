# seed-shoot, the in-instance client of the shoot API: the script of seed-shoot.sh with
# nixpkgs' curl, jq and coreutils (offline-seed-shoot.nix builds the same script for
# flakes without nixpkgs).
#
# callPackage-able; writeShellApplication runs shellcheck on the script when it builds.
{ writeShellApplication, curl, jq, coreutils }:

writeShellApplication {
  name = "seed-shoot";
  runtimeInputs = [ curl jq coreutils ];
  text = builtins.readFile ./seed-shoot.sh;
}
