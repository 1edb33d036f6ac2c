# The bundled example, runnable offline: the output shape of a real Seed flake
# (`seeds.<name>.{meta,image}`) with metas from Seed's own meta function and toy images
# in place of NixOS systems (those need nixpkgs; see nix/README.md and scripts/nixos-eval).
# `seed up` copies this directory and nix/meta.nix (as seed-meta.nix) into a fresh git
# repository, as a tenant's push would bring it.
{
  description = "Seed example: a web front, an API and a DNS server";

  outputs = { self }:
    let
      seedMeta = import ./seed-meta.nix;
      # Stands in for mkSeed's NixOS image: a derivation whose store path changes with its content.
      toyImage = name: content: derivation {
        name = "seed-${name}-image";
        system = "x86_64-linux";
        builder = "/bin/sh";
        args = [ "-c" "echo '${content}' > $out" ];
      };
      seed = name: options: content: {
        meta = seedMeta { inherit name; seed = options; };
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
