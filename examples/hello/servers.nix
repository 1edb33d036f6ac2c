# The example's servers, as real nix-snapshotter images built without nixpkgs
# (seed-offline-image.nix is Seed's nix/offline-image.nix): programs from the store,
# started by the container's entrypoint, stopped at once by SIGTERM.
#
#   web  busybox httpd on 8080: `/` says who answers and what api said, `/readyz`
#   api  busybox httpd on 9000: `/` answers JSON, `/readyz`
#   dns  CoreDNS on 53, UDP and TCP: authoritative for servers/hello.seed.zone
#
# `tools` (static busybox, nix2container) and `coredns` are directories prepared by
# Seed's scripts/flake-tools and passed in as `path:` flake inputs; `seedShoot` is Seed's
# shoot client, which web (the instance with shoots enabled) carries in /bin.
{ tools, coredns, seedShoot, offlineImage }:

let
  system = "x86_64-linux";
  busybox = "${tools}/bin/busybox";

  # A document root for busybox httpd: cgi-bin/index.cgi from `cgi` (answers `/`) and
  # a static `readyz`. The CGI's `@release@` is the start of this directory's store
  # hash, which changes exactly when the instance's code does.
  httpdRoot = name: cgi: derivation {
    name = "seed-${name}-site";
    inherit system busybox cgi;
    builder = busybox;
    args = [ "sh" "-c" ''
      mkdir -p "$out/cgi-bin"
      release=$(basename "$out" | cut -c1-12)
      sed -e "s|@busybox@|$busybox|" -e "s|@release@|$release|" "$cgi" > "$out/cgi-bin/index.cgi"
      chmod 0555 "$out/cgi-bin/index.cgi"
      echo ready > "$out/readyz"
    '' ];
  };

  # /bin with the busybox applets an operator reaches for (`kubectl exec … sh`) and the
  # given programs, linked at the image's root: what a NixOS instance has as
  # /run/current-system/sw/bin.
  shellBin = programs: derivation {
    name = "seed-shell-bin";
    inherit system busybox programs;
    builder = busybox;
    args = [ "sh" "-c" ''
      mkdir -p "$out/bin"
      for applet in sh ls cat echo wget env hostname printf sleep; do
        ln -s "$busybox" "$out/bin/$applet"
      done
      for program in $programs; do
        ln -s "$program" "$out/bin/"
      done
    '' ];
  };

  httpdImage = name: port: cgi: programs: offlineImage {
    name = "seed-${name}";
    config.entrypoint = [ busybox "sh" ./servers/httpd.sh (toString port) (httpdRoot name cgi) ];
    config.env = [ "PATH=/bin" ];
    copyToRoot = [ (shellBin programs) ];
  };

  corefile = builtins.toFile "Corefile"
    (builtins.replaceStrings [ "@zone@" ] [ "${./servers/hello.seed.zone}" ] (builtins.readFile ./servers/Corefile));
in
{
  web = httpdImage "web" 8080 ./servers/web.cgi [ "${seedShoot}/bin/seed-shoot" ];
  api = httpdImage "api" 9000 ./servers/api.cgi [ ];
  dns = offlineImage {
    name = "seed-dns";
    config.entrypoint = [ "${coredns}/bin/coredns" "-conf" corefile ];
  };
}
