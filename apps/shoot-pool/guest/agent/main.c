// shoot-agent runs inside a Seed shoot microVM as PID 1 (exec'd by the initramfs /init)
// and serves the host's requests over one byte stream (PROTOCOL.md): the virtio-serial
// port named "agent" under QEMU, vsock under Cloud Hypervisor, and a Unix socket for the
// host's own tests of the agent. As PID 1 it also reaps every orphan, and never returns
// (the kernel would panic).
//
// shoot-agent [--port NAME] [--vsock-port N] [--unix PATH]
//
// --port "" and --vsock-port 0 turn those transports off.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent.h"

#define PORTS_DIR "/sys/class/virtio-ports"
// While no host is connected to QEMU's side of the port, reads return EOF at once (and
// writes block): the session ends and the agent looks again this soon, because a freshly
// restored clone is waiting for its first answer.
#define IDLE_POLL_MS 5
// The virtio devices probe asynchronously: the port is looked for this often for the
// first 10 s, then every second (under Cloud Hypervisor there is none).
#define PORT_SEARCH_FAST_MS 10000
#define PORT_SEARCH_SLOW_MS 1000
#define REOPEN_MS 100

void agent_log(const char *format, ...) {
  // Only what is out of the ordinary: stderr is the console, an emulated UART where
  // each byte is an exit to the VMM.
  va_list args;
  va_start(args, format);
  fputs("shoot-agent: ", stderr);
  vfprintf(stderr, format, args);
  fputc('\n', stderr);
  va_end(args);
}

int64_t clock_ms(clockid_t clock) {
  struct timespec now;
  clock_gettime(clock, &now);
  return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

// One transport: a connection (the serial port, or the one accepted from a listener).
struct transport {
  const char *name;
  int listener; // -1 for the serial port
  int conn;     // -1 while there is none
  struct reader reader;
  int64_t retry_at; // serial: when to look for or read the port again (monotonic ms)
  bool warned;      // serial: that the port is still missing
};

static void on_sigpipe(int sig) {
  // Nothing: a write to a command that stopped reading its stdin answers EPIPE. A
  // handler, not SIG_IGN, because an ignored signal stays ignored across execve.
  (void)sig;
}

// The virtio-serial port with that name, as /dev/vportNpM, or NULL.
static char *find_port(const char *name) {
  DIR *dir = opendir(PORTS_DIR);
  if (dir == NULL) return NULL;
  char *found = NULL;
  struct dirent *entry;
  while (found == NULL && (entry = readdir(dir)) != NULL) {
    if (entry->d_name[0] == '.') continue;
    char path[512], text[256] = "";
    snprintf(path, sizeof path, PORTS_DIR "/%s/name", entry->d_name);
    FILE *file = fopen(path, "re");
    if (file == NULL) continue;
    if (fgets(text, sizeof text, file) != NULL) {
      text[strcspn(text, "\n")] = '\0';
      if (strcmp(text, name) == 0 && asprintf(&found, "/dev/%s", entry->d_name) < 0) abort();
    }
    fclose(file);
  }
  closedir(dir);
  return found;
}

static int listen_on(int family, const struct sockaddr *addr, socklen_t len) {
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (bind(fd, addr, len) != 0 || listen(fd, 4) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

// Serves the frames a connection has sent: READ_FRAME while its session goes on.
static enum read_result serve(struct agent *a, struct transport *t) {
  do {
    struct frame request;
    enum read_result got = read_frame(&t->reader, &request);
    if (got != READ_FRAME) {
      if (got == READ_ERROR) agent_log("%s: read: %s", t->name, strerror(errno));
      return got;
    }
    struct bytes answer = {0};
    handle_request(a, &request, &answer);
    frame_free(&request);
    bool written = write_all(t->conn, answer.data, answer.len);
    bytes_free(&answer);
    if (!written) {
      agent_log("%s: write answer: %s", t->name, strerror(errno));
      return READ_ERROR;
    }
  } while (reader_buffered(&t->reader));
  return READ_FRAME;
}

// Ends a session: a listener's connection is closed; the serial port stays open (QEMU
// holds what a host writes until the guest reads it) and is read again shortly, and only
// a failed one is reopened. Either way a partial frame is dropped.
static void end_session(struct transport *t, bool failed) {
  int64_t now = clock_ms(CLOCK_MONOTONIC);
  if (t->listener >= 0 || failed) {
    close(t->conn);
    t->conn = -1;
  }
  reader_reset(&t->reader, t->conn);
  t->retry_at = now + (t->listener >= 0 ? 0 : failed ? REOPEN_MS : IDLE_POLL_MS);
}

// The serial port: looked for, opened, and after an EOF (no host) read again shortly.
static void open_serial(struct transport *t, const char *port_name, int64_t now, int64_t started) {
  char *path = find_port(port_name);
  if (path == NULL) {
    bool slow = now - started > PORT_SEARCH_FAST_MS;
    if (slow && !t->warned) {
      agent_log("no virtio-serial port named \"%s\" yet; still looking", port_name);
      t->warned = true;
    }
    t->retry_at = now + (slow ? PORT_SEARCH_SLOW_MS : IDLE_POLL_MS);
    return;
  }
  // A plain blocking descriptor: reads wait for the host or return EOF without it.
  t->conn = open(path, O_RDWR | O_CLOEXEC);
  if (t->conn < 0) {
    agent_log("open %s: %s", path, strerror(errno));
    t->retry_at = now + PORT_SEARCH_SLOW_MS;
  } else {
    agent_log("serving on %s", path);
    reader_reset(&t->reader, t->conn);
  }
  free(path);
}

int main(int argc, char **argv) {
  const char *port_name = "agent", *unix_path = NULL;
  unsigned long vsock_port = 1024;
  static const struct option options[] = {
      {"port", required_argument, NULL, 'p'},
      {"vsock-port", required_argument, NULL, 'v'},
      {"unix", required_argument, NULL, 'u'},
      {0},
  };
  for (int opt; (opt = getopt_long(argc, argv, "", options, NULL)) != -1;) {
    if (opt == 'p') port_name = optarg;
    else if (opt == 'v') vsock_port = strtoul(optarg, NULL, 10);
    else if (opt == 'u') unix_path = optarg;
    else {
      fprintf(stderr, "usage: shoot-agent [--port NAME] [--vsock-port N] [--unix PATH]\n");
      return 2;
    }
  }

  struct agent a = {.started_ms = clock_ms(CLOCK_MONOTONIC)};
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  a.child_exits = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  if (a.child_exits < 0) {
    agent_log("signalfd: %s", strerror(errno));
    return 1;
  }
  sigaction(SIGPIPE, &(struct sigaction){.sa_handler = on_sigpipe}, NULL);

  struct transport transports[3];
  size_t count = 0;
  if (port_name[0] != '\0')
    transports[count++] = (struct transport){.name = "serial", .listener = -1, .conn = -1};
  if (vsock_port != 0) {
    struct sockaddr_vm addr = {
        .svm_family = AF_VSOCK, .svm_port = (unsigned)vsock_port, .svm_cid = VMADDR_CID_ANY};
    int fd = listen_on(AF_VSOCK, (struct sockaddr *)&addr, sizeof addr);
    if (fd < 0) // no vsock device (QEMU here has none): the serial port serves
      agent_log("no vsock listener on port %lu: %s", vsock_port, strerror(errno));
    else transports[count++] = (struct transport){.name = "vsock", .listener = fd, .conn = -1};
  }
  if (unix_path != NULL) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", unix_path);
    int fd = listen_on(AF_UNIX, (struct sockaddr *)&addr, sizeof addr);
    if (fd < 0) {
      agent_log("listen on %s: %s", unix_path, strerror(errno));
      return 1;
    }
    transports[count++] = (struct transport){.name = "unix", .listener = fd, .conn = -1};
  }
  for (size_t i = 0; i < count; i++) reader_init(&transports[i].reader, -1);

  for (;;) {
    struct pollfd fds[4] = {{a.child_exits, POLLIN, 0}};
    int64_t now = clock_ms(CLOCK_MONOTONIC), wake = -1;
    for (size_t i = 0; i < count; i++) {
      struct transport *t = &transports[i];
      if (t->listener < 0 && t->conn < 0 && now >= t->retry_at)
        open_serial(t, port_name, now, a.started_ms);
      bool resting = t->listener < 0 && (t->conn < 0 || now < t->retry_at);
      if (resting && (wake < 0 || t->retry_at < wake)) wake = t->retry_at;
      int fd = resting ? -1 : t->conn >= 0 ? t->conn : t->listener;
      fds[1 + i] = (struct pollfd){fd, POLLIN, 0};
    }
    int timeout = wake < 0 ? -1 : (int)(wake > now ? wake - now : 0);
    if (poll(fds, (nfds_t)(1 + count), timeout) < 0 && errno != EINTR) {
      agent_log("poll: %s", strerror(errno));
      continue;
    }
    if (fds[0].revents != 0) reap_children(&a, 0, &(int){0});
    for (size_t i = 0; i < count; i++) {
      struct transport *t = &transports[i];
      if (fds[1 + i].revents == 0 || fds[1 + i].fd < 0) continue;
      if (t->conn < 0) {
        // One session at a time: the next host waits in the backlog.
        t->conn = accept4(t->listener, NULL, NULL, SOCK_CLOEXEC);
        if (t->conn >= 0) reader_reset(&t->reader, t->conn);
        continue;
      }
      enum read_result ended = serve(&a, t);
      if (ended != READ_FRAME) end_session(t, ended == READ_ERROR);
    }
  }
}
