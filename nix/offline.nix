# Seed's library where nixpkgs' lib is at hand but NixOS and the package set are not:
# the offline flakes (examples/hello, the test fixtures), the tests, scripts/nixos-eval.
#
#   seedMetaOf { lib = nixpkgs-lib.lib; name = "web"; module = ./web.nix; }   # → meta
#
# The instance module is evaluated by the real module system together with the `seed.*`
# options (modules/options.nix), so its meta comes out as through mkSeed: the same
# coercions, defaults, merging of several modules, mkIf/mkDefault/mkForce, and the same
# meta.nix with its messages. What is missing is the NixOS system around it: only the
# options declared here exist (a module that sets `services.nginx` needs it declared
# through `extraModules`), and `pkgs` is the platform, not a package set.
#
# mkSeed does not call this: its meta must come from the one NixOS evaluation that also
# gives the toplevel, so that every NixOS module can set `seed.*` and the meta forces the
# whole system. The two share options.nix and set the same two NixOS values below.
rec {
  # The module evaluation itself ({ config; options; ... }), for tests that read more
  # than the meta (instance-base.nix's settings, option types).
  evalInstance = { lib, name, module, system ? "x86_64-linux", extraModules ? [ ] }:
    lib.evalModules {
      modules = [
        ./modules/options.nix
        # Declared, not acted on: offline there is no activation, only the meta's `tpm`.
        ./modules/secrets-option.nix
        {
          # seed.meta reads the hostname and the platform; mkSeed sets them from the
          # same `name` and `system`. networking.hostName belongs to NixOS (which also
          # checks a hostname pattern first): declared here as a plain string, so a bad
          # name gets meta.nix's message.
          options.networking.hostName = lib.mkOption {
            type = lib.types.str;
            description = "The instance name, as mkSeed sets it.";
          };
          config.networking.hostName = name;
          # No package set offline: options.nix reads only the platform from pkgs.
          config._module.args.pkgs = { stdenv.hostPlatform = { inherit system; }; };
        }
        module
      ] ++ extraModules;
    };

  # seeds.<name>.meta of an instance module, as the offline flakes export it.
  seedMetaOf = args: (evalInstance args).config.seed.meta;
}
