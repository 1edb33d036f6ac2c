# seed.lib.mkSeed: one Seed instance from a NixOS module.
#
#   seeds.web = seed.lib.mkSeed { name = "web"; module = ./web.nix; };
#
# gives the three attributes the platform reads:
#   meta      the instance's metadata (ARCHITECTURE.md); evaluating it type-checks the
#             whole NixOS system without building anything
#   toplevel  the NixOS system (config.system.build.toplevel)
#   image     an OCI image for nix-snapshotter ("nix:0<store path>"): a tiny root file
#             system whose entrypoint is the system's init; the store paths it needs
#             are bind-mounted by nix-snapshotter instead of being copied into layers
{ nixpkgs, nix-snapshotter, self }:

let
  # Packages for building images: nixpkgs plus nix-snapshotter's overlay (for
  # pkgs.nix-snapshotter.buildImage). Kept apart from the instance's own pkgs, whose
  # containerd/k3s the overlay would otherwise replace. Defined once per flake
  # evaluation and per system, so a flake with many seeds imports nixpkgs once more,
  # not once per seed.
  imagePkgsFor = system: import nixpkgs {
    inherit system;
    overlays = [ nix-snapshotter.overlays.default ];
  };
  imagePkgs = {
    x86_64-linux = imagePkgsFor "x86_64-linux";
    aarch64-linux = imagePkgsFor "aarch64-linux";
  };
in

{ name, module, system ? "x86_64-linux", extraModules ? [ ] }:

let
  nixos = nixpkgs.lib.nixosSystem {
    modules = [
      self.nixosModules.instance
      self.nixosModules.instance-base
      {
        # The instance name is the hostname; meta.nix validates it as a DNS label.
        networking.hostName = name;
        nixpkgs.hostPlatform = nixpkgs.lib.mkDefault system;
      }
      module
    ] ++ extraModules;
  };

  inherit (nixos) config;
  toplevel = config.system.build.toplevel;

  pkgs = imagePkgs.${system} or (imagePkgsFor system);

  # The directories NixOS's init and Kata expect to mount on, and the
  # /run/current-system link stage 2 would otherwise create from the init path.
  rootfs = pkgs.runCommand "seed-rootfs-${name}" { } ''
    mkdir -p $out/proc $out/sys $out/dev $out/run $out/tmp $out/etc $out/var $out/nix/store
    ln -s ${toplevel} $out/run/current-system
  '';

  image = pkgs.nix-snapshotter.buildImage {
    name = "seed-${name}";
    resolvedByNix = true;
    copyToRoot = rootfs;
    config.entrypoint = [ "${toplevel}/init" ];
  };
in
{
  # Forcing drvPath evaluates every option and instantiates every derivation of the
  # system (type errors, failed assertions, missing packages) but builds nothing;
  # `seq` then hands back the meta, itself validated by meta.nix.
  meta = builtins.seq toplevel.drvPath config.seed.meta;
  inherit toplevel image;
}
