// Framing (PROTOCOL.md): every message, both ways, is
//
// magic "SEED" | u32 BE header length | u32 BE blob count | header (JSON) | blobs
// blob = u32 BE length | bytes
//
// Lengths are checked before anything is allocated for what they announce.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"

static const uint8_t MAGIC[4] = {'S', 'E', 'E', 'D'};

// What one request may carry (the host's REQUEST_LIMITS in src/agent/protocol.ts). An exec
// header holds argv and env (at most 1 MiB of UTF-8 by the shoot API, up to 6 bytes each
// once JSON-escaped) and its binds; its one blob is stdin, at most the shoot API's ceiling.
#define MAX_HEADER_BYTES (8u << 20)
#define MAX_BLOBS 1u
#define MAX_BLOB_BYTES (32u << 20)
#define READ_CHUNK (256u << 10)

void bytes_append(struct bytes *b, const void *data, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    uint8_t *grown = realloc(b->data, cap);
    if (grown == NULL) {
      agent_log("out of memory");
      abort();
    }
    b->data = grown;
    b->cap = cap;
  }
  memcpy(b->data + b->len, data, n);
  b->len += n;
}

void bytes_free(struct bytes *b) {
  free(b->data);
  *b = (struct bytes){0};
}

void frame_free(struct frame *f) {
  free(f->header);
  free(f->blob);
  *f = (struct frame){0};
}

void reader_init(struct reader *r, int fd) {
  *r = (struct reader){.fd = fd, .buf = malloc(READ_CHUNK), .cap = READ_CHUNK};
  if (r->buf == NULL) {
    agent_log("out of memory");
    abort();
  }
}

// A new session on the reader: whatever the last one left unread is dropped.
void reader_reset(struct reader *r, int fd) {
  r->fd = fd;
  r->start = r->end = 0;
}

bool reader_buffered(const struct reader *r) { return r->end > r->start; }

// Reads more into the buffer: 1 when it did, 0 at the stream's end, -1 on an error.
static int fill(struct reader *r) {
  if (r->start > 0) {
    memmove(r->buf, r->buf + r->start, r->end - r->start);
    r->end -= r->start;
    r->start = 0;
  }
  for (;;) {
    ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
    if (n > 0) {
      r->end += (size_t)n;
      return 1;
    }
    if (n == 0) return 0;
    if (errno != EINTR) return -1;
  }
}

// Makes n (≤ the buffer) bytes available at r->start.
static int want(struct reader *r, size_t n) {
  while (r->end - r->start < n) {
    int got = fill(r);
    if (got <= 0) return got;
  }
  return 1;
}

// Reads exactly n bytes into dst: first what is buffered, the rest straight from the
// descriptor (a 32 MiB stdin is not copied through the buffer).
static int read_exact(struct reader *r, uint8_t *dst, size_t n) {
  size_t buffered = r->end - r->start;
  size_t take = buffered < n ? buffered : n;
  memcpy(dst, r->buf + r->start, take);
  r->start += take;
  while (take < n) {
    ssize_t got = read(r->fd, dst + take, n - take);
    if (got > 0) take += (size_t)got;
    else if (got == 0) return 0;
    else if (errno != EINTR) return -1;
  }
  return 1;
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static enum read_result ended(int got) { return got == 0 ? READ_END : READ_ERROR; }

// Drops bytes up to the next "SEED", so a desynchronised stream (a host that vanished
// mid-frame, a bad length) recovers at the next frame instead of misreading every later
// one.
static int skip_to_magic(struct reader *r) {
  for (;;) {
    int got = want(r, sizeof MAGIC);
    if (got <= 0) return got;
    if (memcmp(r->buf + r->start, MAGIC, sizeof MAGIC) == 0) return 1;
    r->start++;
  }
}

enum read_result read_frame(struct reader *r, struct frame *out) {
  *out = (struct frame){0};
  for (;;) {
    int got = skip_to_magic(r);
    if (got <= 0) return ended(got);
    uint8_t fixed[12];
    if ((got = read_exact(r, fixed, sizeof fixed)) <= 0) return ended(got);
    uint32_t header_len = be32(fixed + 4), blob_count = be32(fixed + 8);
    if (header_len == 0 || header_len > MAX_HEADER_BYTES || blob_count > MAX_BLOBS) {
      agent_log("dropping unreadable input: header of %u bytes, %u blobs", header_len, blob_count);
      continue;
    }
    out->header = malloc(header_len + 1);
    if (out->header == NULL) abort();
    if ((got = read_exact(r, (uint8_t *)out->header, header_len)) <= 0) {
      frame_free(out);
      return ended(got);
    }
    out->header[header_len] = '\0';
    out->header_len = header_len;
    if (blob_count == 0) return READ_FRAME;
    uint8_t size[4];
    if ((got = read_exact(r, size, sizeof size)) <= 0) {
      frame_free(out);
      return ended(got);
    }
    uint32_t blob_len = be32(size);
    if (blob_len > MAX_BLOB_BYTES) {
      agent_log("dropping unreadable input: blob of %u bytes", blob_len);
      frame_free(out);
      continue;
    }
    out->blob = malloc(blob_len ? blob_len : 1);
    if (out->blob == NULL) abort();
    if ((got = read_exact(r, out->blob, blob_len)) <= 0) {
      frame_free(out);
      return ended(got);
    }
    out->has_blob = true;
    out->blob_len = blob_len;
    return READ_FRAME;
  }
}

void encode_frame(struct bytes *out, const json_t *header, const struct bytes *blobs,
                  size_t count) {
  char *text = json_dumps(header, JSON_COMPACT | JSON_PRESERVE_ORDER);
  if (text == NULL) {
    agent_log("out of memory");
    abort();
  }
  uint8_t fixed[12];
  memcpy(fixed, MAGIC, sizeof MAGIC);
  size_t text_len = strlen(text);
  put_be32(fixed + 4, (uint32_t)text_len);
  put_be32(fixed + 8, (uint32_t)count);
  bytes_append(out, fixed, sizeof fixed);
  bytes_append(out, text, text_len);
  free(text);
  for (size_t i = 0; i < count; i++) {
    uint8_t size[4];
    put_be32(size, (uint32_t)blobs[i].len);
    bytes_append(out, size, sizeof size);
    if (blobs[i].len > 0) bytes_append(out, blobs[i].data, blobs[i].len);
  }
}

bool write_all(int fd, const uint8_t *data, size_t n) {
  while (n > 0) {
    ssize_t done = write(fd, data, n);
    if (done < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += done;
    n -= (size_t)done;
  }
  return true;
}
