# seed-shoot for flakes without nixpkgs (the offline example, test fixtures): the script
# of seed-shoot.sh run by static busybox's sh, with Debian's curl and jq.
#
#   seedShoot = import ./seed-offline-seed-shoot.nix { inherit tools client; };
#   # ${seedShoot}/bin/seed-shoot
#
# `tools` is scripts/flake-tools' directory (bin/busybox, static); `client` is
# `scripts/flake-tools shoot-client`'s: libexec/{curl,jq} with the libraries they load
# and the loader in lib/. Debian has no static curl, so each is called through that
# loader with that library directory: nothing of the machine it runs on is used.
# Pure builtins, no nixpkgs, no imports: test fixtures copy this file into flakes.
{ tools, client, system ? "x86_64-linux" }:

derivation {
  name = "seed-shoot";
  inherit system;
  builder = "${tools}/bin/busybox";
  busybox = "${tools}/bin/busybox";
  client = "${client}";
  script = ./seed-shoot.sh;
  args = [ "sh" "-c" ''
    set -eu
    helpers="$out/libexec/seed-shoot"
    mkdir -p "$out/bin" "$helpers"
    for program in curl jq; do
      printf '#!%s sh\nexec %s/lib/ld-linux-x86-64.so.2 --argv0 %s --library-path %s/lib %s/libexec/%s "$@"\n' \
        "$busybox" "$client" "$program" "$client" "$client" "$program" > "$helpers/$program"
      chmod 0555 "$helpers/$program"
    done
    for applet in base64 cat head mktemp rm; do
      ln -s "$busybox" "$helpers/$applet"
    done
    {
      printf '#!%s sh\n# shellcheck shell=dash\nset -o errexit -o nounset -o pipefail\nPATH=%s:''${PATH:-}\n\n' "$busybox" "$helpers"
      cat "$script"
    } > "$out/bin/seed-shoot"
    chmod 0555 "$out/bin/seed-shoot"
  '' ];
}
