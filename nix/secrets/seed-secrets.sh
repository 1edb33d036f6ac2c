#!/bin/sh
# seed-secrets: the instance side of Seed's secrets (docs/secrets.md). POSIX sh, so the
# same file runs at NixOS activation and in the test VM's busybox.
#
#   seed-secrets recipient          the instance's age recipient (age1...), creating the
#                                   identity in the TPM on first use
#   seed-secrets install MANIFEST   decrypts every secret MANIFEST names into $SEED_SECRETS_DIR
#                                   (default /run/secrets); exits 1 naming the first that fails
#
# MANIFEST has one secret per line: `<name> <sops file> <owner> <group> <mode>`.
#
# With SEED_SECRETS_FAILURE set, a failure's message is also written to that file (and an
# `install` that succeeds removes it), for the platform to report: nix/modules/secrets.nix
# hands it to Kubernetes as the container's termination message. Like every message here
# it names files and says why, never what a secret holds.
#
# The identity is an age X25519 key sealed in the instance's TPM (a keyed-hash object
# under the owner hierarchy's primary key, made persistent at $SEED_SECRETS_HANDLE): it
# exists in clear only inside the TPM and, for the moment sops decrypts, in the memory
# of the pipe between tpm2_unseal and sops. It is never written to a file, the nix store
# or a log; the TPM's state lives on the host, outside the VM. Needs tpm2-tools, age-keygen
# and sops on PATH, and a TPM (tpm2-tools' default /dev/tpmrm0, or TPM2TOOLS_TCTI).
#
# Activation can come before the kernel has registered the TPM, and a TPM behind a busy
# VMM can miss a command: a TPM that does not answer is retried for SEED_SECRETS_TPM_WAIT
# seconds (default 10), then named as such, never taken for one without an identity.
set -eu

handle=${SEED_SECRETS_HANDLE:-0x81005eed}
secrets_dir=${SEED_SECRETS_DIR:-/run/secrets}
failure_file=${SEED_SECRETS_FAILURE:-}
tpm_wait=${SEED_SECRETS_TPM_WAIT:-10}

die() {
  echo "seed-secrets: $*" >&2
  if [ -n "$failure_file" ]; then
    { mkdir -p "$(dirname "$failure_file")" && echo "seed-secrets: $*" >"$failure_file"; } || true
  fi
  exit 1
}

# tpm2-tools' own messages (`ERROR: ...`) on one line, without the library's trace lines.
tool_errors() {
  printf '%s\n' "$1" | sed -n 's/^ERROR: //p' | tr '\n' ' '
}

# The TPM's persistent handles, one `- 0x81...` line each.
persistent_handles() {
  waited=0
  until handles=$(tpm2_getcap handles-persistent 2>&1); do
    [ "$waited" -lt "$tpm_wait" ] ||
      die "the TPM does not answer (${TPM2TOOLS_TCTI:-device:/dev/tpmrm0}): $(tool_errors "$handles")"
    sleep 1
    waited=$((waited + 1))
  done
  printf '%s\n' "$handles"
}

have_identity() {
  # die in the substitution's subshell has said why; this shell must stop too.
  handles=$(persistent_handles) || exit 1
  grep -qix -e "- $handle" <<EOF
$handles
EOF
}

# Without a resource manager (swtpm's socket on the host) every step's objects would stay
# loaded, and the TPM has room for three: flush them between steps. /dev/tpmrm0 needs none.
flush() {
  tpm2_flushcontext -t >/dev/null 2>&1 || true
}

create_identity() {
  work=$(mktemp -d)
  # Only TPM-wrapped blobs land here: the key is piped straight into the TPM.
  trap 'rm -rf "$work"' EXIT
  tpm2_createprimary -Q -C o -g sha256 -G ecc256 -c "$work/primary.ctx" ||
    die "cannot create the TPM's primary key"
  flush
  age-keygen 2>/dev/null | grep '^AGE-SECRET-KEY-' |
    tpm2_create -Q -C "$work/primary.ctx" -i - -u "$work/key.pub" -r "$work/key.priv" ||
    die "cannot seal a new identity in the TPM"
  flush
  tpm2_load -Q -C "$work/primary.ctx" -u "$work/key.pub" -r "$work/key.priv" -c "$work/key.ctx" ||
    die "cannot load the sealed identity"
  tpm2_evictcontrol -Q -C o -c "$work/key.ctx" "$handle" >/dev/null ||
    die "cannot make the identity persistent at $handle"
  flush
  rm -rf "$work"
  trap - EXIT
}

recipient() {
  have_identity || create_identity
  recipient=$(tpm2_unseal -c "$handle" | age-keygen -y) || die "cannot unseal the identity at $handle"
  echo "$recipient"
}

install_secrets() {
  manifest=$1
  [ -z "$failure_file" ] || rm -f "$failure_file"
  [ -r "$manifest" ] || die "no manifest $manifest"
  have_identity || die "this instance's TPM holds no identity at $handle (a new TPM: run 'seed keys' and re-encrypt)"
  mkdir -p "$secrets_dir"
  chmod 0751 "$secrets_dir"
  # sops asks for the key only when it needs it, and gets it over a pipe.
  SOPS_AGE_KEY_CMD="tpm2_unseal -c $handle"
  export SOPS_AGE_KEY_CMD
  while read -r name file owner group mode; do
    [ -n "$name" ] || continue
    case $name in
      */* | . | ..) die "secret name '$name' is not a file name" ;;
    esac
    [ -r "$file" ] || die "secret $name: $file does not exist"
    target=$secrets_dir/$name
    tmp=$(mktemp "$secrets_dir/.$name.XXXXXX")
    chmod 0600 "$tmp"
    # sops' own message says why (no matching key, bad MAC); it never contains the plaintext.
    if ! errors=$(sops --decrypt "$file" 2>&1 >"$tmp"); then
      rm -f "$tmp"
      die "secret $name: cannot decrypt $file: $(printf '%s' "$errors" | tail -n 3 | tr '\n' ' ')"
    fi
    chown "$owner:$group" "$tmp" || { rm -f "$tmp"; die "secret $name: no owner $owner:$group"; }
    chmod "$mode" "$tmp" || { rm -f "$tmp"; die "secret $name: bad mode $mode"; }
    mv -f "$tmp" "$target"
  done <"$manifest"
}

case ${1:-} in
  recipient) recipient ;;
  install)
    [ $# -eq 2 ] || die "usage: seed-secrets install MANIFEST"
    install_secrets "$2"
    ;;
  *) die "usage: seed-secrets recipient | seed-secrets install MANIFEST" ;;
esac
