// seed-mount: the shoot pool's host bind mounts, made with the mount(2) and umount2(2)
// syscalls from inside the daemon (a Node-API addon, dist/seed-mount.node). A mount(8)
// process per bind cost ~3-8 ms on every shoot's path (most of it util-linux reading the
// mount table), and a helper process answering over a pipe ~0.3 ms: each request woke it
// and its answer woke the daemon again. The syscalls themselves take microseconds.
//
//   bind(source, target, flags): synchronous; bind source onto target, private.
//     flags: 'r' read-only (checked with statvfs: never left writable), 'R' recursive (the
//     mounts under source come along, each keeping its own flags), 'd' both ends must be
//     directories (checked first, nothing mounted otherwise).
//   umount(target): a Promise; unmounts target, and a busy one, or one with mounts under
//     it, is detached with everything under it (MNT_DETACH), as `umount --lazy` does.
//     Detaching a closure view's hundred mounts takes milliseconds, so it runs on libuv's
//     thread pool, off the daemon's event loop.
// Both answer null, or { errno, step, reason } naming the step that failed (`source`,
// `target`, `bind`, `make private`, `remount read-only`, `read-only check`, `umount`).
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <errno.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#define PATH_BYTES 4096

typedef struct {
  int err;
  const char *step;
} failure;

static const failure OK = {0, NULL};

static failure failed(const char *step) { return (failure){errno, step}; }

// The per-mount flags a read-only remount must keep: MS_REMOUNT|MS_BIND sets them all.
static unsigned long kept_flags(const char *target) {
  struct statvfs st;
  unsigned long flags = 0;
  if (statvfs(target, &st) != 0) return 0;
  if (st.f_flag & ST_NOSUID) flags |= MS_NOSUID;
  if (st.f_flag & ST_NODEV) flags |= MS_NODEV;
  if (st.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (st.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (st.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (st.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  return flags;
}

// 0 if `path` is a directory, else why not (errno).
static int directory(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return errno;
  return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

static failure bind(const char *flags, const char *source, const char *target) {
  if (strchr(flags, 'd')) {
    int err = directory(source);
    if (err != 0) return (failure){err, "source"};
    if ((err = directory(target)) != 0) return (failure){err, "target"};
  }
  unsigned long rec = strchr(flags, 'R') ? MS_REC : 0;
  if (mount(source, target, NULL, MS_BIND | rec, NULL) != 0) return failed("bind");
  failure result = OK;
  if (mount(NULL, target, NULL, MS_PRIVATE | rec, NULL) != 0) result = failed("make private");
  else if (strchr(flags, 'r')) {
    struct statvfs st;
    if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | kept_flags(target), NULL) != 0)
      result = failed("remount read-only");
    else if (statvfs(target, &st) != 0 || !(st.f_flag & ST_RDONLY)) {
      errno = EPERM;
      result = failed("read-only check");
    }
  }
  if (result.err != 0) umount2(target, MNT_DETACH);
  return result;
}

static failure unmount(const char *target) {
  if (umount2(target, 0) == 0) return OK;
  if (errno != EBUSY) return failed("umount");
  if (umount2(target, MNT_DETACH) == 0) return OK;
  return failed("umount (detach)");
}

// Node-API calls below fail only on a broken environment or a programming error here.
#define CHECK(call)                                                            \
  do {                                                                         \
    if ((call) != napi_ok) {                                                   \
      napi_throw_error(env, NULL, "seed-mount: Node-API call failed: " #call); \
      return NULL;                                                             \
    }                                                                          \
  } while (0)

static napi_value answer(napi_env env, failure result) {
  napi_value value;
  if (result.err == 0) {
    CHECK(napi_get_null(env, &value));
    return value;
  }
  napi_value field;
  CHECK(napi_create_object(env, &value));
  CHECK(napi_create_int32(env, result.err, &field));
  CHECK(napi_set_named_property(env, value, "errno", field));
  CHECK(napi_create_string_utf8(env, result.step, NAPI_AUTO_LENGTH, &field));
  CHECK(napi_set_named_property(env, value, "step", field));
  CHECK(napi_create_string_utf8(env, strerror(result.err), NAPI_AUTO_LENGTH, &field));
  CHECK(napi_set_named_property(env, value, "reason", field));
  return value;
}

// Copies string argument `i` into `buf`; false (with a TypeError thrown) if it is not a
// string, is too long, or holds a NUL (the kernel would read a shorter path).
static bool path_arg(napi_env env, napi_value *argv, size_t i, char *buf) {
  size_t length;
  if (napi_get_value_string_utf8(env, argv[i], buf, PATH_BYTES, &length) != napi_ok) {
    napi_throw_type_error(env, NULL, "seed-mount: a path or flags argument is not a string");
    return false;
  }
  if (length >= PATH_BYTES - 1 || strlen(buf) != length) {
    napi_throw_type_error(env, NULL, "seed-mount: a path is too long or contains NUL");
    return false;
  }
  return true;
}

static napi_value bind_call(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char source[PATH_BYTES], target[PATH_BYTES], flags[PATH_BYTES];
  if (argc != 3 || !path_arg(env, argv, 0, source) || !path_arg(env, argv, 1, target) ||
      !path_arg(env, argv, 2, flags))
    return NULL;
  return answer(env, bind(flags, source, target));
}

typedef struct {
  char target[PATH_BYTES];
  failure result;
  napi_deferred deferred;
  napi_async_work work;
} umount_job;

static void umount_execute(napi_env env, void *data) {
  (void)env;
  umount_job *job = data;
  job->result = unmount(job->target);
}

static void umount_complete(napi_env env, napi_status status, void *data) {
  umount_job *job = data;
  napi_value value = NULL;
  if (status == napi_ok) value = answer(env, job->result);
  if (value == NULL) {
    napi_value message;
    napi_create_string_utf8(env, "seed-mount: the unmount did not run", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &value);
    napi_reject_deferred(env, job->deferred, value);
  } else {
    napi_resolve_deferred(env, job->deferred, value);
  }
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value umount_call(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], promise, name;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  umount_job *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, NULL, "seed-mount: out of memory");
    return NULL;
  }
  if (argc != 1 || !path_arg(env, argv, 0, job->target)) {
    free(job);
    return NULL;
  }
  CHECK(napi_create_promise(env, &job->deferred, &promise));
  CHECK(napi_create_string_utf8(env, "seed-mount umount", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_async_work(env, NULL, name, umount_execute, umount_complete, job, &job->work));
  CHECK(napi_queue_async_work(env, job->work));
  return promise;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  CHECK(napi_create_function(env, "bind", NAPI_AUTO_LENGTH, bind_call, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "bind", fn));
  CHECK(napi_create_function(env, "umount", NAPI_AUTO_LENGTH, umount_call, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "umount", fn));
  return exports;
}
