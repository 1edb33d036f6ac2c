// mount, bind, remount, unmount: how the host wires its shares into the guest. A share the
// VMM exports (9p or virtio-fs tag) is mounted once per clone; binds expose parts of it
// elsewhere (the store read-only, a caller's volumes).
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"

// The mount data each host-share filesystem needs. 9p: the virtio transport, the Linux
// dialect and a large msize (fewer round trips per read); no cache, so binds the host
// makes into the export after the mount are seen at once.
static const char *share_options(const char *fstype) {
  return strcmp(fstype, "9p") == 0 ? "trans=virtio,version=9p2000.L,msize=262144,cache=none" : "";
}

// mkdir -p: every missing directory of path, each 0755.
static int make_dirs(const char *path) {
  char *copy = strdup(path);
  int result = 0;
  for (char *slash = copy + 1;; slash++) {
    if (*slash != '/' && *slash != '\0') continue;
    char kept = *slash;
    *slash = '\0';
    if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
      result = -1;
      break;
    }
    *slash = kept;
    if (kept == '\0') break;
  }
  if (result == 0) {
    struct stat st;
    if (stat(path, &st) != 0) result = -1;
    else if (!S_ISDIR(st.st_mode)) {
      errno = ENOTDIR;
      result = -1;
    }
  }
  int saved = errno;
  free(copy);
  errno = saved;
  return result;
}

bool mount_share(const char *fstype, const char *source, const char *target, bool read_only,
                 const char *options, struct failure *f) {
  if (fstype[0] == '\0' || source[0] == '\0' || target[0] != '/')
    return bad_request(f, "mount needs fstype, source and an absolute target");
  const char *defaults = share_options(fstype);
  char *data;
  if (asprintf(&data, "%s%s%s", defaults, defaults[0] && options[0] ? "," : "", options) < 0)
    abort();
  unsigned long flags = MS_NOSUID | MS_NODEV | (read_only ? MS_RDONLY : 0);
  bool done = false;
  if (make_dirs(target) != 0) failed(f, errno, "mkdir %s", target);
  else if (mount(source, target, fstype, flags, data) != 0)
    failed(f, errno, "mount %s %s on %s", fstype, source, target);
  else done = true;
  free(data);
  return done;
}

// What binds made for their targets (the target and its missing parents, deepest first),
// so that unmount with remove leaves the guest's tree as it was before the bind: a clone
// prepared with one caller's mount points shows none of them to the next caller.
struct made_paths {
  struct made_paths *next;
  char *target; // lexically clean
  size_t count;
  char **paths;
};

static struct made_paths *made_by_binds;

// The path with "//", "." and ".." resolved lexically, as Go's filepath.Clean does for an
// absolute path: the host names a target once with and once without a trailing slash.
static char *clean_path(const char *path) {
  char *out = malloc(strlen(path) + 2);
  size_t len = 0;
  const char *p = path;
  while (*p != '\0') {
    while (*p == '/') p++;
    const char *end = strchrnul(p, '/');
    size_t n = (size_t)(end - p);
    if (n == 0 || (n == 1 && p[0] == '.')) {
      // nothing
    } else if (n == 2 && p[0] == '.' && p[1] == '.') {
      while (len > 0 && out[len] != '/') len--;
      if (len > 0 || out[0] == '/') out[len] = '\0';
    } else {
      out[len++] = '/';
      memcpy(out + len, p, n);
      len += n;
    }
    out[len] = '\0';
    p = end;
  }
  if (len == 0) strcpy(out, "/");
  return out;
}

static struct made_paths **find_made(const char *clean_target) {
  struct made_paths **at = &made_by_binds;
  while (*at != NULL && strcmp((*at)->target, clean_target) != 0) at = &(*at)->next;
  return at;
}

static void free_made(struct made_paths *m) {
  for (size_t i = 0; i < m->count; i++) free(m->paths[i]);
  free(m->paths);
  free(m->target);
  free(m);
}

// Removes paths, deepest first; answers the first failure.
static bool remove_all(char **paths, size_t count, struct failure *f) {
  for (size_t i = 0; i < count; i++)
    if (remove(paths[i]) != 0 && errno != ENOENT) return failed(f, errno, "remove %s", paths[i]);
  return true;
}

// Makes a missing bind target, a directory (with its parents) or an empty file, and
// records in `made` the paths it made, deepest first. -1 with errno when it could not.
static int make_target(const char *target, bool dir, struct made_paths *made) {
  char *p = strdup(made->target);
  while (strcmp(p, "/") != 0) {
    struct stat st;
    if (lstat(p, &st) == 0 || errno != ENOENT) break;
    made->paths = realloc(made->paths, (made->count + 1) * sizeof *made->paths);
    made->paths[made->count++] = strdup(p);
    char *slash = strrchr(p, '/');
    if (slash == p) slash[1] = '\0';
    else *slash = '\0';
  }
  free(p);
  int result = 0;
  if (dir) {
    result = make_dirs(target);
  } else {
    int fd = open(target, O_CREAT | O_RDONLY | O_CLOEXEC, 0644);
    if (fd < 0) result = -1;
    else close(fd);
  }
  if (result != 0) {
    int saved = errno;
    struct failure ignored = {0};
    remove_all(made->paths, made->count, &ignored);
    errno = saved;
  }
  return result;
}

// Binds source onto a target of the kind asked. What it made for the target is removed
// again when the bind fails and recorded when it succeeds.
static bool bind_onto(const struct bind_spec *spec, bool dir, struct failure *f) {
  struct made_paths *made = calloc(1, sizeof *made);
  made->target = clean_path(spec->target);
  bool done = false;
  if (make_target(spec->target, dir, made) != 0) {
    failed(f, errno, "create %s", spec->target);
  } else if (mount(spec->source, spec->target, NULL, MS_BIND | MS_REC, NULL) != 0) {
    int saved = errno;
    struct failure ignored = {0};
    remove_all(made->paths, made->count, &ignored);
    failed(f, saved, "bind %s on %s", spec->source, spec->target);
  } else {
    done = true;
  }
  if (done && made->count > 0) {
    struct made_paths **at = find_made(made->target);
    if (*at != NULL) {
      struct made_paths *old = *at;
      *at = old->next;
      free_made(old);
    }
    made->next = made_by_binds;
    made_by_binds = made;
  } else {
    free_made(made);
  }
  return done;
}

// A missing target is made of the source's kind without asking the source's kind first:
// sources are directories (the store, volumes) but for the rare file, and the stat would
// be a step of its own (a round trip over 9p) on every shoot's path. A file source fails
// the bind onto a directory with ENOTDIR and is then bound onto a file.
bool bind_mount(const struct bind_spec *spec, struct failure *f) {
  if (spec->source[0] != '/' || spec->target[0] != '/')
    return bad_request(f, "bind needs an absolute source and target");
  if (!bind_onto(spec, true, f)) {
    if (f->code == NULL || strcmp(f->code, "ENOTDIR") != 0) return false;
    *f = (struct failure){0};
    if (!bind_onto(spec, false, f)) return false;
  }
  // A bind ignores MS_RDONLY when it is made: read-only takes a remount of the bind.
  return !spec->read_only || remount(spec->target, true, true, f);
}

bool remount(const char *target, bool read_only, bool bind, struct failure *f) {
  if (target[0] != '/') return bad_request(f, "remount needs an absolute target");
  unsigned long flags = MS_REMOUNT | (bind ? MS_BIND : 0) | (read_only ? MS_RDONLY : 0);
  if (mount(NULL, target, NULL, flags, NULL) != 0) return failed(f, errno, "remount %s", target);
  return true;
}

bool unmount(const char *target, bool lazy, bool remove, struct failure *f) {
  if (target[0] != '/') return bad_request(f, "unmount needs an absolute target");
  if (umount2(target, lazy ? MNT_DETACH : 0) != 0) return failed(f, errno, "unmount %s", target);
  if (!remove) return true;
  char *clean = clean_path(target);
  struct made_paths **at = find_made(clean);
  free(clean);
  if (*at == NULL) return true;
  struct made_paths *made = *at;
  *at = made->next;
  bool done = remove_all(made->paths, made->count, f);
  free_made(made);
  return done;
}
