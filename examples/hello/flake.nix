# The bundled example, runnable offline: the output shape of a real Seed flake
# (`seeds.<name>.{meta,image}`) with metas from Seed's own meta function and real
# nix-snapshotter images of small servers (servers.nix) in place of NixOS systems (those
# need nixpkgs; see nix/README.md and scripts/nixos-eval).
# `seed up` copies this directory, nix/meta.nix (as seed-meta.nix) and
# nix/offline-image.nix (as seed-offline-image.nix) into a fresh git repository, as a
# tenant's push would bring it, and points the two `path:` inputs below at the
# directories scripts/flake-tools prepared.
{
  description = "Seed example: a web front, an API and a DNS server";

  inputs = {
    # Static busybox and nix2container: what the images are built with and run.
    seed-tools = { url = "path:/seed-flake-tools"; flake = false; };
    # CoreDNS, for the dns instance only.
    seed-coredns = { url = "path:/seed-flake-coredns"; flake = false; };
  };

  outputs = { self, seed-tools, seed-coredns }:
    let
      seedMeta = import ./seed-meta.nix;
      # Stand in for mkSeed's NixOS images, in the same image format.
      images = import ./servers.nix {
        tools = seed-tools;
        coredns = seed-coredns;
        offlineImage = import ./seed-offline-image.nix { tools = seed-tools; };
      };
      seed = name: options: {
        meta = seedMeta { inherit name; seed = options; };
        image = images.${name};
      };
    in
    {
      seeds = {
        web = seed "web" {
          expose.http = 8080;
          storage.data = "1Gi";
          connect.api = { service = "api"; port = 9000; };
          shoot.enable = true;
        };

        api = seed "api" {
          size = "m";
          expose.http = 9000;
          rollout = "rolling";
        };

        dns = seed "dns" {
          size = "xs";
          expose.dns = { port = 53; protocol = "dns"; };
        };
      };
    };
}
