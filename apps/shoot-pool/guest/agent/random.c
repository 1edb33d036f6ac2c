// reseed: a clone restored from a snapshot wakes with the template's kernel RNG state, as
// every other clone of that snapshot does; until the kernel reseeds on its own two clones
// may draw the same bytes. The host sends fresh entropy right after the restore, before
// anything runs: it is credited to the input pool (RNDADDENTROPY) and the CRNG is made to
// reseed from it (RNDRESEEDCRNG), so every later read in this clone differs from every
// other clone's.
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "agent.h"

// 32 bytes make a full CRNG key; more than 512 would only be the host's waste.
#define MIN_ENTROPY_BYTES 32
#define MAX_ENTROPY_BYTES 512

bool reseed_kernel(const uint8_t *entropy, size_t n, struct failure *f) {
  if (n < MIN_ENTROPY_BYTES || n > MAX_ENTROPY_BYTES)
    return bad_request(f, "reseed takes %d … %d bytes of entropy, not %zu", MIN_ENTROPY_BYTES,
                       MAX_ENTROPY_BYTES, n);
  int random = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
  if (random < 0) return failed(f, errno, "open /dev/urandom");
  struct {
    struct rand_pool_info info;
    uint8_t buf[MAX_ENTROPY_BYTES];
  } pool;
  pool.info.entropy_count = (int)(n * 8);
  pool.info.buf_size = (int)n;
  memcpy(pool.buf, entropy, n);
  bool done = true;
  if (ioctl(random, RNDADDENTROPY, &pool) != 0) done = failed(f, errno, "RNDADDENTROPY");
  else if (ioctl(random, RNDRESEEDCRNG) != 0) done = failed(f, errno, "RNDRESEEDCRNG");
  close(random);
  return done;
}
