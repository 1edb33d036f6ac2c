// exec: one command in its own process group with the caller's argv, environment and
// stdin; stdout and stderr captured byte-exact up to a cap; the whole group ended at the
// deadline. When the command's first process exits, whatever it left running in its group
// is killed too: a shoot is one command, and a background child holding the output pipes
// open must not hold the answer back. One poll loop does it all: no threads.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

#define DEFAULT_MAX_OUTPUT (1 << 20)
// A request that names no timeout still ends: nothing runs forever.
#define CEILING_TIMEOUT_MS (24LL * 3600 * 1000)
// How long output is still read after the group was killed: a process that escaped the
// group (setsid) may keep the pipes open forever.
#define DRAIN_GRACE_MS 500
// What timeout(1) answers, which callers already know.
#define EXIT_TIMED_OUT 124

static const char *const BASE_ENV[] = {
    "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
    "HOME=/root",
};

static int cmp_strings(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static size_t name_len(const char *entry) {
  const char *eq = strchr(entry, '=');
  return eq == NULL ? strlen(entry) : (size_t)(eq - entry);
}

// The base environment overridden by the request's, sorted; the strings are borrowed.
static const char **merge_env(const char **overrides) {
  size_t count = 0;
  while (overrides[count] != NULL) count++;
  size_t base = sizeof BASE_ENV / sizeof *BASE_ENV, n = 0;
  const char **env = calloc(count + base + 1, sizeof *env);
  for (size_t i = 0; i < base; i++) {
    size_t len = name_len(BASE_ENV[i]);
    bool overridden = false;
    for (size_t j = 0; j < count && !overridden; j++)
      overridden = name_len(overrides[j]) == len && strncmp(overrides[j], BASE_ENV[i], len) == 0;
    if (!overridden) env[n++] = BASE_ENV[i];
  }
  for (size_t j = 0; j < count; j++) env[n++] = overrides[j];
  qsort(env, n, sizeof *env, cmp_strings);
  return env;
}

static const char *env_value(const char **env, const char *name) {
  size_t len = strlen(name);
  for (; *env != NULL; env++)
    if (strncmp(*env, name, len) == 0 && (*env)[len] == '=') return *env + len + 1;
  return "";
}

// The shell's answer for a command that cannot run: for the caller it is their command's
// outcome, not the agent's failure.
static void cannot_run(struct exec_result *res, int code, const char *name, const char *why) {
  res->exit_code = code;
  char line[PATH_MAX_BYTES + 128];
  int n = snprintf(line, sizeof line, "shoot-agent: %s: %s\n", name, why);
  bytes_append(&res->err, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

// Resolves argv[0] the way a shell does, against the command's own PATH. Answers the path
// to run, or NULL after filling res with the shell's answer (127 not found, 126 not
// executable). The result is malloc'd.
static char *look_path(const char *name, const char *path_var, struct exec_result *res) {
  if (strchr(name, '/') != NULL) return strdup(name); // posix_spawn reports ENOENT/EACCES itself
  const char *dir = path_var;
  for (;;) {
    const char *end = strchrnul(dir, ':');
    char *candidate;
    if (end == dir) candidate = strdup(name);
    else if (asprintf(&candidate, "%.*s/%s", (int)(end - dir), dir, name) < 0) abort();
    struct stat st;
    if (stat(candidate, &st) == 0 && !S_ISDIR(st.st_mode)) {
      if ((st.st_mode & 0111) != 0) return candidate;
      free(candidate);
      cannot_run(res, 126, name, strerror(EACCES));
      return NULL;
    }
    free(candidate);
    if (*end == '\0') break;
    dir = end + 1;
  }
  cannot_run(res, 127, name, "command not found");
  return NULL;
}

bool reap_children(struct agent *a, pid_t pid, int *status) {
  struct signalfd_siginfo info;
  while (read(a->child_exits, &info, sizeof info) > 0)
    ; // the queue is only a wake-up: wait4 below finds every exit
  bool found = false;
  for (;;) {
    int st;
    pid_t reaped = waitpid(-1, &st, WNOHANG);
    if (reaped < 0 && errno == EINTR) continue;
    if (reaped <= 0) return found;
    if (reaped == pid) {
      *status = st;
      found = true;
    }
  }
}

// One output stream: the first `cap` bytes kept, the rest read and dropped, so the writer
// never blocks on a full pipe.
struct capture {
  int *fd;
  struct bytes *data;
  bool *truncated;
  size_t cap;
};

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

static void read_some(struct capture *c) {
  static uint8_t chunk[64 << 10];
  ssize_t n = read(*c->fd, chunk, sizeof chunk);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    close_fd(c->fd);
    return;
  }
  size_t room = c->cap - c->data->len, keep = (size_t)n;
  if (keep > room) {
    *c->truncated = true;
    keep = room;
  }
  if (keep > 0) bytes_append(c->data, chunk, keep);
}

// Starts the command; answers its pid, or 0 after filling res with the shell's answer
// for why it cannot run (posix_spawn reports the failed chdir or execve's errno).
static pid_t spawn(const char *path, const struct exec_request *req, const char **env, int fds[3],
                   struct exec_result *res) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  for (int i = 0; i < 3; i++) posix_spawn_file_actions_adddup2(&actions, fds[i], i);
  if (req->cwd[0] != '\0') posix_spawn_file_actions_addchdir_np(&actions, req->cwd);
  // A group of its own, so the deadline ends every process it started; and none of the
  // agent's blocked signals (SIGCHLD) blocked in it.
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigmask(&attr, &none);
  pid_t pid;
  int err = posix_spawn(&pid, path, &actions, &attr, (char *const *)req->argv, (char *const *)env);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err == 0) return pid;
  cannot_run(res, err == ENOENT || err == ENOTDIR ? 127 : 126, req->argv[0], strerror(err));
  return 0;
}

bool run_command(struct agent *a, const struct exec_request *req, struct exec_result *res,
                 struct failure *f) {
  size_t cap = req->max_output_bytes > 0 ? (size_t)req->max_output_bytes : DEFAULT_MAX_OUTPUT;
  int64_t timeout = req->timeout_ms > 0 && req->timeout_ms < CEILING_TIMEOUT_MS
                        ? req->timeout_ms
                        : CEILING_TIMEOUT_MS;
  if (req->cwd[0] != '\0') {
    // Checked here so a missing directory is not mistaken for a missing command.
    struct stat st;
    if (stat(req->cwd, &st) != 0) return failed(f, errno, "cwd");
    if (!S_ISDIR(st.st_mode)) return bad_request(f, "cwd %s is not a directory", req->cwd);
  }
  const char **env = merge_env(req->env);
  char *path = look_path(req->argv[0], env_value(env, "PATH"), res);
  if (path == NULL) {
    free(env);
    return true;
  }

  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  bool done = false;
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    internal_failure(f, errno, "pipe");
    goto out;
  }
  int child_fds[3] = {in[0], out[1], err[1]};
  int64_t started = clock_ms(CLOCK_MONOTONIC);
  pid_t pid = spawn(path, req, env, child_fds, res);
  if (pid <= 0) {
    done = true; // cannot_run filled res
    goto out;
  }
  // The child holds its own copies now; ours would keep the pipes open forever.
  close_fd(&in[0]);
  close_fd(&out[1]);
  close_fd(&err[1]);
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  size_t stdin_sent = 0;
  if (req->stdin_len == 0) close_fd(&in[1]);

  struct capture captures[2] = {
      {&out[0], &res->out, &res->out_truncated, cap},
      {&err[0], &res->err, &res->err_truncated, cap},
  };
  int64_t deadline = started + timeout, drain_by = 0;
  bool exited = false;
  int status = 0;
  while (!exited || out[0] >= 0 || err[0] >= 0) {
    int64_t now = clock_ms(CLOCK_MONOTONIC);
    if (!exited && !res->timed_out && now >= deadline) {
      res->timed_out = true;
      kill(-pid, SIGKILL);
    }
    if (exited && now >= drain_by) break;
    struct pollfd fds[4] = {
        {a->child_exits, exited ? 0 : POLLIN, 0},
        {out[0], POLLIN, 0},
        {err[0], POLLIN, 0},
        {in[1], POLLOUT, 0},
    };
    int64_t until = exited ? drain_by : res->timed_out ? -1 : deadline;
    int wait = until < 0 ? -1 : (int)(until - now);
    if (poll(fds, 4, wait) < 0 && errno != EINTR) {
      internal_failure(f, errno, "poll");
      kill(-pid, SIGKILL);
      goto out;
    }
    if (fds[0].revents != 0 && reap_children(a, pid, &status)) {
      exited = true;
      res->duration_ms = clock_ms(CLOCK_MONOTONIC) - started;
      // Leftovers of the group: see the top of this file.
      kill(-pid, SIGKILL);
      drain_by = clock_ms(CLOCK_MONOTONIC) + DRAIN_GRACE_MS;
    }
    for (int i = 0; i < 2; i++)
      if (fds[1 + i].revents != 0) read_some(&captures[i]);
    if (fds[3].revents != 0) {
      // A command that does not read its stdin gets EPIPE here, which is fine.
      ssize_t n = write(in[1], req->stdin_data + stdin_sent, req->stdin_len - stdin_sent);
      if (n > 0) stdin_sent += (size_t)n;
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || stdin_sent == req->stdin_len)
        close_fd(&in[1]);
    }
  }
  if (res->timed_out) {
    res->exit_code = EXIT_TIMED_OUT;
  } else if (WIFEXITED(status)) {
    res->exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    res->signal = WTERMSIG(status);
    res->exit_code = 128 + res->signal;
  } else {
    res->exit_code = 128;
  }
  done = true;
out:
  for (int i = 0; i < 2; i++) {
    close_fd(&in[i]);
    close_fd(&out[i]);
    close_fd(&err[i]);
  }
  free(path);
  free(env);
  return done;
}
