# seed.lib.offlineImage: nix-snapshotter images for flakes that have no nixpkgs.
#
#   offlineImage = import ./seed-offline-image.nix { tools = inputs.seed-tools; };
#   image = offlineImage {
#     name = "seed-web";                        # the store path is nix-image-<name>.tar
#     config.entrypoint = [ "${tools}/bin/busybox" "sh" "${./web.sh}" ];
#     config.env = [ "GREETING=hello" ];       # any OCI image config field (Entrypoint, Cmd, Env, WorkingDir, ...)
#     copyToRoot = [ site ];                   # store directories whose files are linked at /
#   };
#
# It makes the same image as nix-snapshotter's `buildImage { resolvedByNix = true; }`,
# which mk-seed.nix uses with nixpkgs: an OCI archive written by `nix2container build`
# whose single layer holds an empty mount point for every path of the closure of the
# config and copyToRoot, annotated `containerd.io/snapshot/nix-closure = <closure info
# dir>` (whose `store-paths` lists that closure), with the reference
# `nix:0<store path>:latest` inside. Kubernetes names it `nix:0<store path>`.
#
# `tools` is a directory (a store path; from a flake input of `path:` type, so that no
# derivation reads the host) with `bin/busybox` (static) and `bin/nix2container`, as
# `scripts/flake-tools` prepares it. Every derivation here is built by that busybox, so
# nothing outside the store is used and the builds work in the nix sandbox.
# Pure builtins, no nixpkgs, no imports: test fixtures copy this file into flakes.
{ tools, system ? "x86_64-linux" }:

{ name
, config ? { }
, copyToRoot ? [ ]
}:

let
  copyToRoots = if builtins.isList copyToRoot then copyToRoot else [ copyToRoot ];

  # A derivation built by a shell script of the tools' busybox (whose shell runs its own
  # applets, so no PATH is needed).
  busyboxRun = drvName: script: attrs: derivation ({
    name = drvName;
    inherit system;
    builder = "${tools}/bin/busybox";
    args = [ "sh" "-c" script ];
  } // attrs);

  # A file with the text of `text`; unlike builtins.toFile, `text` may name derivation
  # outputs (the entrypoint names the system it starts), which become references.
  textFile = fileName: text:
    busyboxRun fileName ''printf '%s' "$text" > "$out"'' { inherit text; };

  configFile = textFile "config-${name}.json" (builtins.toJSON config);
  copyToRootFile = textFile "copy-to-root-${name}.json" (builtins.toJSON copyToRoots);

  # containerd 2.4 reads a new container's /etc/passwd and /etc/group (CRI does it for
  # every container, for supplemental groups) through a view of the snapshot's *last*
  # mount only (its internal/fsview), and nix-snapshotter appends one read-only bind
  # mount per line of `store-paths`, in order. When that last line is a file, every
  # container of the image fails with "open <store path>: not a directory". So the list
  # ends with this empty directory: the view finds no /etc there and adds no groups.
  lastMount = busyboxRun "seed-image-last-mount" ''mkdir "$out"'' { };

  # What nixpkgs' closureInfo gives nix2container: `store-paths`, every path of the
  # runtime closure of the roots, one a line, sorted (here with lastMount moved last).
  # exportReferencesGraph writes each root's closure in the registration format (path,
  # empty deriver line, reference count, references); the closure is closed under
  # references, so its paths are the distinct lines that start with '/'. The output
  # references all of them, so a GC root on it (nix-snapshotter makes one per pulled
  # layer) keeps the whole closure alive.
  roots = [ configFile lastMount ] ++ copyToRoots;
  closureInfo = busyboxRun "closure-info-${name}" ''
    mkdir "$out"
    {
      cat graph-* | grep '^/' | sort -u | grep -vxF "$lastMount"
      echo "$lastMount"
    } > "$out/store-paths"
  '' {
    inherit lastMount;
    exportReferencesGraph = builtins.concatLists
      (builtins.genList (i: [ "graph-${toString i}" (builtins.elemAt roots i) ]) (builtins.length roots));
  };
in
busyboxRun "nix-image-${name}.tar" ''
  "$tools/bin/nix2container" --log-level warn build \
    --config "$configFile" \
    --closure "$closureInfo/store-paths" \
    --copy-to-root "$copyToRootFile" \
    "$out"
'' {
  inherit configFile copyToRootFile closureInfo;
  tools = "${tools}";
}
