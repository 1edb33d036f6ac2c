# The bundled example, runnable offline: the output shape of a real Seed flake
# (`seeds.<name>.{meta,image}`) with real nix-snapshotter images of small servers
# (servers.nix) in place of NixOS systems (those need nixpkgs; see nix/README.md and
# scripts/nixos-eval). Each meta comes from the instance module evaluated with the real
# `seed.*` options (nix/offline.nix's seedMetaOf, what mkSeed does minus NixOS), so it is
# what the same lines give in a tenant's web.nix.
# `seed up` copies this directory into a fresh git repository, as a tenant's push would
# bring it, with Seed's offline library under seed/, nix/offline-image.nix (as
# seed-offline-image.nix), Seed's offline seed-shoot under seed/ and a flake.lock; it
# points `nixpkgs-lib` at the copy vendored in nix/vendor (the same commit as below) and
# the `path:` inputs at the directories scripts/flake-tools prepared.
{
  description = "Seed example: a web front, an API and a DNS server";

  inputs = {
    # nixpkgs' lib: the module system, without packages.
    nixpkgs-lib.url = "github:nix-community/nixpkgs.lib/de42d44212d207476489bce163375d8306a26d59";
    # Static busybox and nix2container: what the images are built with and run.
    seed-tools = { url = "path:/seed-flake-tools"; flake = false; };
    # CoreDNS, for the dns instance only.
    seed-coredns = { url = "path:/seed-flake-coredns"; flake = false; };
    # curl and jq for seed-shoot, the shoot client web carries (NixOS instances get it
    # from nixpkgs).
    seed-shoot-client = { url = "path:/seed-flake-shoot-client"; flake = false; };
  };

  outputs = { self, nixpkgs-lib, seed-tools, seed-coredns, seed-shoot-client }:
    let
      inherit (import ./seed/offline.nix) seedMetaOf;
      # Stand in for mkSeed's NixOS images, in the same image format.
      images = import ./servers.nix {
        tools = seed-tools;
        coredns = seed-coredns;
        seedShoot = import ./seed/offline-seed-shoot.nix { tools = seed-tools; client = seed-shoot-client; };
        offlineImage = import ./seed-offline-image.nix { tools = seed-tools; };
      };
      seed = name: options: {
        meta = seedMetaOf { inherit (nixpkgs-lib) lib; inherit name; module.seed = options; };
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
          # A TPM of its own, whose age identity decrypts this sops file at activation.
          # The file is encrypted to api's recipient once that exists (`seed keys <flake>
          # api`, after the first push; docs/secrets.md): `seed up` does so on the host and
          # decrypts it in a VM with api's TPM. The offline stand-in reads only the meta.
          secrets.greeting = ./secrets/greeting.enc.yaml;
        };

        dns = seed "dns" {
          size = "xs";
          expose.dns = { port = 53; protocol = "dns"; };
        };
      };
    };
}
