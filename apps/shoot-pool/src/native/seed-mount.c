// seed-mount: the shoot pool's host bind mounts made with the mount(2) and umount2(2)
// syscalls by one long-lived process, instead of a mount(8)/umount(8) process per bind
// (~3-8 ms each, most of it util-linux reading the mount table, on every shoot's path).
//
// Requests on stdin, one after another, each four NUL-terminated fields:
//   op \0 flags \0 source \0 target \0
//   op "bind":   bind source onto target, private; flags 'r' read-only, 'R' recursive
//                (the mounts under source come along; each keeps its own flags), 'd' both
//                must be directories (checked here: a stat in the daemon is a round trip
//                through libuv's thread pool, ~0.2 ms on every shoot's path)
//   op "umount": unmount target; a busy one, or one with mounts under it, is detached
//                with everything under it (MNT_DETACH), as `umount --lazy` does
// One answer line per request on stdout: "0" or "<errno> <what failed>: <strerror>".
// Built static by the package's build (cc -static), into dist/ beside the JavaScript.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#define FIELD_MAX 4096

static int read_field(char *buf) {
  for (int i = 0; i < FIELD_MAX; i++) {
    int c = getchar();
    if (c == EOF) return -1;
    buf[i] = (char)c;
    if (c == '\0') return 0;
  }
  return -2;
}

static void answer(int err, const char *what) {
  if (err == 0) printf("0\n");
  else printf("%d %s: %s\n", err, what, strerror(err));
  fflush(stdout);
}

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

// 0 if `path` is a directory, else why not (errno), for a `what` of its own.
static int directory(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return errno;
  return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

static void bind(const char *flags, const char *source, const char *target) {
  if (strchr(flags, 'd')) {
    int err = directory(source);
    if (err != 0) {
      answer(err, "source");
      return;
    }
    if ((err = directory(target)) != 0) {
      answer(err, "target");
      return;
    }
  }
  unsigned long rec = strchr(flags, 'R') ? MS_REC : 0;
  if (mount(source, target, NULL, MS_BIND | rec, NULL) != 0) {
    answer(errno, "bind");
    return;
  }
  const char *what = NULL;
  if (mount(NULL, target, NULL, MS_PRIVATE | rec, NULL) != 0) what = "make private";
  else if (strchr(flags, 'r')) {
    struct statvfs st;
    if (mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | kept_flags(target), NULL) != 0)
      what = "remount read-only";
    else if (statvfs(target, &st) != 0 || !(st.f_flag & ST_RDONLY)) {
      // Never leave a bind asked to be read-only writable.
      errno = EPERM;
      what = "read-only check";
    }
  }
  if (what == NULL) {
    answer(0, NULL);
    return;
  }
  int err = errno;
  umount2(target, MNT_DETACH);
  answer(err, what);
}

static void unmount(const char *target) {
  if (umount2(target, 0) == 0) answer(0, NULL);
  else if (errno != EBUSY) answer(errno, "umount");
  else if (umount2(target, MNT_DETACH) == 0) answer(0, NULL);
  else answer(errno, "umount (detach)");
}

int main(void) {
  static char op[FIELD_MAX], flags[FIELD_MAX], source[FIELD_MAX], target[FIELD_MAX];
  for (;;) {
    int status = read_field(op);
    if (status == -1) return 0; // the daemon closed our stdin
    if (status != 0 || read_field(flags) != 0 || read_field(source) != 0 ||
        read_field(target) != 0) {
      answer(EINVAL, "request");
      return 1;
    }
    if (strcmp(op, "bind") == 0) bind(flags, source, target);
    else if (strcmp(op, "umount") == 0) unmount(target);
    else answer(EINVAL, op);
  }
}
