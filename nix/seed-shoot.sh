# seed-shoot: the in-instance client of the shoot API (ARCHITECTURE.md, "Shoot API").
#
#   seed-shoot [--timeout MS] [--stdin] [--] COMMAND [ARG...]
#
# POSTs {"command": [COMMAND, ARG...], "timeout": MS} to "$SEED_SHOOT_URL/shoot", writes
# the shoot's stdout and stderr to its own and exits with the shoot's exit code. When the
# service refuses (any non-2xx answer: 403 not allowed, 429 pool full, ...) it prints the
# answer's JSON `error` and exits 1; so does a failure to reach the service.
#
# Output is byte-exact: when either stream is not valid UTF-8 the service sends both
# base64 encoded, flagged by `"encoding": "base64"` in the answer.
#
# The body of a script run with errexit, nounset and pipefail by bash (seed-shoot.nix,
# with nixpkgs) or busybox sh (offline-seed-shoot.nix): POSIX sh, needing only curl, jq,
# mktemp, cat, head, rm and base64 on PATH.

usage() {
  cat <<'EOF'
usage: seed-shoot [--timeout MS] [--stdin] [--] COMMAND [ARG...]

Runs COMMAND in a shoot: a fresh microVM restored from a snapshot that shares this
instance's nix store (read-only) and volumes (read-write), without network. Prints
the command's stdout and stderr and exits with its exit code.

  --timeout MS   kill the command after MS milliseconds (default 60000)
  --stdin        send this command's standard input to COMMAND
  -h, --help     show this help

Needs SEED_SHOOT_URL (set when the instance has seed.shoot.enable = true; read
from /run/seed/env when the environment lacks it) and sends the instance's token
(SEED_SHOOT_TOKEN_FILE, /seed/shoot-token/token). Exits 1 when the shoot could
not run, printing the service's error.
EOF
}

die() {
  printf 'seed-shoot: %s\n' "$1" >&2
  exit 1
}

timeout_ms=60000
send_stdin=0
while [ "$#" -gt 0 ]; do
  case "$1" in
    -h | --help)
      usage
      exit 0
      ;;
    --timeout)
      [ "$#" -ge 2 ] || die "--timeout needs a number of milliseconds"
      timeout_ms=$2
      shift 2
      ;;
    --timeout=*)
      timeout_ms=${1#--timeout=}
      shift
      ;;
    --stdin)
      send_stdin=1
      shift
      ;;
    --)
      shift
      break
      ;;
    -*)
      usage >&2
      die "unknown option $1"
      ;;
    *)
      break
      ;;
  esac
done

if [ "$#" -eq 0 ]; then
  usage >&2
  die "no command given"
fi
case "$timeout_ms" in
  "" | *[!0-9]* | 0*) die "--timeout must be a positive number of milliseconds, not '$timeout_ms'" ;;
esac

# Kubernetes hands SEED_SHOOT_URL to the instance's first process; services and
# login shells find it in the copy that activation wrote to /run/seed/env.
url=${SEED_SHOOT_URL:-}
if [ -z "$url" ] && [ -r /run/seed/env ]; then
  url=$(
    # shellcheck source=/dev/null
    . /run/seed/env
    printf '%s' "${SEED_SHOOT_URL:-}"
  )
fi
[ -n "$url" ] || die "SEED_SHOOT_URL is not set (is seed.shoot.enable = true for this instance?)"

# The arguments reach jq as positional strings (after `--`, so ones that look like
# options or contain quotes reach the shoot unchanged); stdin travels through a file,
# since /dev/stdin cannot be opened when stdin is a socket.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
: >"$work/stdin"
if [ "$send_stdin" = 1 ]; then
  cat >"$work/stdin"
fi
jq -n --argjson timeout "$timeout_ms" --argjson send_stdin "$send_stdin" \
  --rawfile stdin "$work/stdin" \
  '{command: $ARGS.positional, timeout: $timeout}
    + (if $send_stdin == 1 then {stdin: $stdin} else {} end)' \
  --args -- "$@" >"$work/request.json"

# The instance's projected token proves to the shoot pool which pod is asking. It goes
# to curl in a header file (mktemp -d made the folder private), not on a command line
# every process of the instance can read.
token_file=${SEED_SHOOT_TOKEN_FILE:-/seed/shoot-token/token}
: >"$work/headers"
if [ -r "$token_file" ]; then
  printf 'Authorization: Bearer %s\n' "$(cat "$token_file")" >"$work/headers"
fi

# Allow the command its full timeout plus time for the pool to start it.
max_time=$((timeout_ms / 1000 + 120))
if ! status=$(curl --silent --show-error --max-time "$max_time" \
  --request POST --header 'content-type: application/json' --header "@$work/headers" \
  --data-binary "@$work/request.json" \
  --output "$work/response.json" --write-out '%{http_code}' \
  "${url%/}/shoot"); then
  die "cannot reach the shoot service at $url"
fi

case "$status" in
  2??) ;;
  *)
    error=$(jq -r '.error // empty' "$work/response.json" 2>/dev/null || true)
    die "shoot refused (HTTP $status): ${error:-$(head -c 500 "$work/response.json")}"
    ;;
esac

# Writes one output stream, decoding base64 when the service flagged it.
encoding=$(jq -r '.encoding // "utf-8"' "$work/response.json")
emit() {
  if [ "$encoding" = base64 ]; then
    jq -j --arg s "$1" '.[$s] // ""' "$work/response.json" | base64 -d
  else
    jq -j --arg s "$1" '.[$s] // ""' "$work/response.json"
  fi
}
emit stdout
emit stderr >&2

exit_code=$(jq -r '.exitCode | if type == "number" then floor else "missing" end' "$work/response.json")
case "$exit_code" in
  "" | missing | -*[!0-9]* | [!-]*[!0-9]*) die "the shoot service answered without an exit code" ;;
esac
# Exit statuses are 0-255; a negative code (killed, timed out) becomes 255.
exit $((exit_code & 255))
