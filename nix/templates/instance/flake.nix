{
  description = "A Seed instance: a NixOS system that boots in a Kata microVM";

  inputs.seed.url = "github:loomtex/seed";

  outputs = { seed, ... }: {
    # Every seeds.<name> becomes one instance; add more with more mkSeed calls.
    seeds.web = seed.lib.mkSeed {
      name = "web";
      module = ./web.nix;
    };
  };
}
