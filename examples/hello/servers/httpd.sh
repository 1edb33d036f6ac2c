# Starts busybox httpd on port $1 with document root $2 (CGI programs in $2/cgi-bin; `/`
# is cgi-bin/index.cgi). The shell is the container's PID 1, and PID 1 has no default
# action for SIGTERM: without the trap, stopping the pod would wait out its grace period.
# With it, the server stops at once and the shell exits 0.
trap 'kill "$server" 2>/dev/null; wait "$server"; echo "$SEED_INSTANCE: stopped"; exit 0' TERM INT
# What a system's early boot makes (NixOS instances have it): the image has no /tmp, and
# programs like seed-shoot need one.
mkdir -p /tmp && chmod 1777 /tmp
echo "$SEED_INSTANCE: serving HTTP on :$1"
httpd -f -v -p "$1" -h "$2" &
server=$!
wait "$server"
