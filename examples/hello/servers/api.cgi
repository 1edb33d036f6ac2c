#!@busybox@ sh
# api's answer to GET /.
printf 'Content-Type: application/json\r\n\r\n'
printf '{"instance":"%s","pod":"%s","release":"@release@"}\n' "$SEED_INSTANCE" "$(hostname)"
