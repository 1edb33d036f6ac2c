#!@busybox@ sh
# web's page: who answers, and what it got from api, found by its service name.
# `release` is the hash of this program's store path: it changes when web's code does.
# `pod` is the pod's name, whose middle part is the Deployment's pod-template hash.
# (`timeout`, not wget's -T: that crashes this busybox's static wget.)
api=$(timeout 3 wget -q -O - "http://${SEED_API_HOST:-api}:${SEED_API_PORT:-9000}/" 2>&1) ||
  api="no answer from ${SEED_API_HOST:-api}:${SEED_API_PORT:-9000} ($api)"
printf 'Content-Type: text/plain\r\n\r\n'
echo "hello from $SEED_INSTANCE (namespace $SEED_NAMESPACE, pod $(hostname), release @release@)"
echo "api says: $api"
# What shoots and the instance itself left in web's volume.
for file in /seed/storage/data/*; do
  [ -f "$file" ] && echo "volume $(basename "$file"): $(cat "$file")"
done
