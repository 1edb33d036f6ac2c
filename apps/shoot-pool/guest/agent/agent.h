// The shoot agent: PID 1 of every shoot microVM (PROTOCOL.md). One thread, one request at
// a time, no runtime of its own: under TCG every clone's QEMU translates afresh each guest
// instruction the agent runs after the restore, and a Go runtime's scheduler, poller,
// timers and allocator were a third of that.
#ifndef SHOOT_AGENT_H
#define SHOOT_AGENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define PROTOCOL_VERSION 1

// A growable byte buffer.
struct bytes {
  uint8_t *data;
  size_t len, cap;
};

void bytes_append(struct bytes *b, const void *data, size_t n);
void bytes_free(struct bytes *b);

// A request's failure as the host sees it (PROTOCOL.md, "Errors").
struct failure {
  const char *kind; // KIND_*; NULL while nothing failed
  char message[512];
  const char *code; // the errno's name when a system call failed
  const char *step; // which part of an exec failed: "unbind" or "bind"
};

#define KIND_BAD_REQUEST "bad-request" // malformed header, unknown op or field, bad value
#define KIND_FAILED "failed"           // the guest kernel refused; code names the errno
#define KIND_INTERNAL "internal"       // the agent itself failed

// Each returns false, so a caller can `return bad_request(...)`.
bool bad_request(struct failure *f, const char *format, ...) __attribute__((format(printf, 2, 3)));
bool failed(struct failure *f, int errnum, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
bool internal_failure(struct failure *f, int errnum, const char *doing);

void agent_log(const char *format, ...) __attribute__((format(printf, 1, 2)));

// One decoded request frame: a JSON header and at most one blob.
struct frame {
  char *header;
  size_t header_len;
  bool has_blob;
  uint8_t *blob;
  size_t blob_len;
};

void frame_free(struct frame *f);

// A connection's read side, buffered.
struct reader {
  int fd;
  uint8_t *buf;
  size_t start, end, cap;
};

enum read_result {
  READ_FRAME, // a whole frame
  READ_END,   // the stream ended (between frames or inside one: the partial is dropped)
  READ_ERROR, // the descriptor failed (errno)
};

void reader_init(struct reader *r, int fd);
void reader_reset(struct reader *r, int fd);
bool reader_buffered(const struct reader *r);
enum read_result read_frame(struct reader *r, struct frame *out);
// An answer frame: the header rendered compactly, then the blobs.
void encode_frame(struct bytes *out, const json_t *header, const struct bytes *blobs, size_t count);
bool write_all(int fd, const uint8_t *data, size_t n);

// The agent's state across requests.
struct agent {
  int64_t started_ms; // clock_ms(CLOCK_MONOTONIC) at start
  unsigned reseeds;   // the host's reseeds since boot: a clone counts its template's
  int child_exits;    // signalfd for SIGCHLD: commands and, as PID 1, every orphan
};

// Renders the answer frame to one request.
void handle_request(struct agent *a, const struct frame *request, struct bytes *answer);

// Reaps every exited child; answers whether `pid` was among them, with its status.
bool reap_children(struct agent *a, pid_t pid, int *status);

// mount.c
struct bind_spec {
  const char *source, *target;
  bool read_only;
};

bool mount_share(const char *fstype, const char *source, const char *target, bool read_only,
                 const char *options, struct failure *f);
bool bind_mount(const struct bind_spec *spec, struct failure *f);
bool remount(const char *target, bool read_only, bool bind, struct failure *f);
bool unmount(const char *target, bool lazy, bool remove, struct failure *f);

// exec.c
struct exec_request {
  const char **argv; // NULL-terminated
  const char **env;  // overrides, "NAME=value", NULL-terminated
  const char *cwd;   // NULL: the agent's
  int64_t timeout_ms;
  int64_t max_output_bytes;
  const uint8_t *stdin_data;
  size_t stdin_len;
};

struct exec_result {
  int exit_code;
  int signal;
  bool timed_out;
  int64_t duration_ms;
  struct bytes out, err;
  bool out_truncated, err_truncated;
};

#define MAX_OUTPUT_CEILING (32 << 20)
#define PATH_MAX_BYTES 4096 // the kernel's PATH_MAX, with the NUL

bool run_command(struct agent *a, const struct exec_request *req, struct exec_result *res,
                 struct failure *f);

// random.c
bool reseed_kernel(const uint8_t *entropy, size_t n, struct failure *f);

// Milliseconds of a clock: CLOCK_MONOTONIC for durations, CLOCK_REALTIME for epochs.
int64_t clock_ms(clockid_t clock);

#endif
