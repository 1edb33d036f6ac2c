# The bundled example, runnable offline: the output shape of a real Seed flake
# (`seeds.<name>.{meta,image}`) with toy images in place of NixOS systems (those need
# nixpkgs; see nix/README.md and scripts/nixos-eval). Each meta comes from the instance
# module evaluated with the real `seed.*` options (nix/offline.nix's seedMetaOf, what
# mkSeed does minus NixOS), so it is what the same lines give in a tenant's web.nix.
# `seed up` copies this file into a fresh git repository, as a tenant's push would bring
# it, with Seed's offline library under seed/ and a flake.lock, and points `nixpkgs-lib`
# at the copy vendored in nix/vendor (the same commit as below).
{
  description = "Seed example: a web front, an API and a DNS server";

  # nixpkgs' lib: the module system, without packages.
  inputs.nixpkgs-lib.url = "github:nix-community/nixpkgs.lib/de42d44212d207476489bce163375d8306a26d59";

  outputs = { self, nixpkgs-lib }:
    let
      inherit (import ./seed/offline.nix) seedMetaOf;
      # Stands in for mkSeed's NixOS image: a derivation whose store path changes with its content.
      toyImage = name: content: derivation {
        name = "seed-${name}-image";
        system = "x86_64-linux";
        builder = "/bin/sh";
        args = [ "-c" "echo '${content}' > $out" ];
      };
      seed = name: options: content: {
        meta = seedMetaOf { inherit (nixpkgs-lib) lib; inherit name; module.seed = options; };
        image = toyImage name content;
      };
    in
    {
      seeds = {
        web = seed "web" {
          expose.http = 8080;
          storage.data = "1Gi";
          connect.api = { service = "api"; port = 9000; };
          shoot.enable = true;
        } "nginx serving the site";

        api = seed "api" {
          size = "m";
          expose.grpc = { port = 9000; protocol = "grpc"; };
          rollout = "rolling";
        } "the API server";

        dns = seed "dns" {
          size = "xs";
          expose.dns = { port = 53; protocol = "dns"; };
        } "an authoritative DNS server";
      };
    };
}
