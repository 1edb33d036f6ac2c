# An ordinary NixOS module, plus the seed.* options that tell the platform how to run it.
{ pkgs, ... }:

{
  # 1 vCPU and 1024 MiB (tiers: xs, s, m, l, xl).
  seed.size = "s";
  # Port 8080 on the instance's Kubernetes Service, opened in the guest firewall.
  seed.expose.http = 8080;
  # A 1Gi persistent volume at /seed/storage/data; Seed never deletes it.
  seed.storage.data = "1Gi";

  services.nginx = {
    enable = true;
    virtualHosts.web = {
      default = true;
      listen = [ { addr = "0.0.0.0"; port = 8080; } ];
      root = pkgs.writeTextDir "index.html" ''
        <!doctype html>
        <title>Seed</title>
        <h1>Hello from a Seed instance</h1>
        <p>NixOS in a microVM, deployed by a git push.</p>
      '';
    };
  };
}
