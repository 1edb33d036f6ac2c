{
  description = "Seed: git push a Nix flake, and each seeds.<name> boots as a NixOS microVM on Kubernetes";

  inputs = {
    nixpkgs.url = "github:nixos/nixpkgs/nixos-25.11";
    nix-snapshotter = {
      url = "github:joshperry/nix-snapshotter/k3s-1.34-support";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  # Every output that needs nixpkgs touches it only inside its own attribute, so
  # `lib.seedMeta` and `templates` evaluate offline with the inputs locked but not
  # fetched (the builder's and the tests' case). See nix/README.md.
  outputs = { self, nixpkgs, nix-snapshotter }: {
    lib = {
      # seeds.<name> = seed.lib.mkSeed { name; module; } → { meta; toplevel; image; }
      mkSeed = import ./nix/mk-seed.nix { inherit nixpkgs nix-snapshotter self; };

      # The pure meta function: { name; system ? "x86_64-linux"; seed ? {}; } → meta.
      seedMeta = import ./nix/meta.nix;

      # An instance module's meta through the real seed.* options without NixOS, for
      # flakes that have nixpkgs' lib but no nixpkgs (offline):
      # { lib; name; module; system ? "x86_64-linux"; extraModules ? [ ]; } → meta.
      inherit (import ./nix/offline.nix) seedMetaOf;

      # nix-snapshotter images without nixpkgs (offline examples and tests):
      # offlineImage { tools; } { name; config ? {}; copyToRoot ? []; } → nix-image-<name>.tar
      offlineImage = import ./nix/offline-image.nix;
    };

    nixosModules = {
      # The seed.* options (and the computed, validated seed.meta).
      instance = ./nix/modules/options.nix;
      # What every instance runs with: container boot, /run/seed/env, firewall,
      # connect variables and files, seed-shoot. Imports the options.
      instance-base = ./nix/modules/instance-base.nix;
    };

    templates = rec {
      instance = {
        path = ./nix/templates/instance;
        description = "A Seed instance: nginx serving a page on port 8080, with a 1Gi volume";
      };
      default = instance;
    };

    packages.x86_64-linux.seed-shoot =
      nixpkgs.legacyPackages.x86_64-linux.callPackage ./nix/seed-shoot.nix { };
  };
}
