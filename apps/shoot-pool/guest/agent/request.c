// Requests and answers (PROTOCOL.md). Every request carries the id the host chose and its
// op; the answer echoes the id, so the host can drop answers to requests it gave up on.
// Fields a request's op does not know are refused: a host that sends them speaks another
// version of the protocol, and guessing would hide the bug.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "agent.h"

static const char *errno_name(int errnum) {
  const char *name = strerrorname_np(errnum);
  static char unnamed[24];
  if (name != NULL) return name;
  snprintf(unnamed, sizeof unnamed, "errno %d", errnum);
  return unnamed;
}

bool bad_request(struct failure *f, const char *format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(f->message, sizeof f->message, format, args);
  va_end(args);
  f->kind = KIND_BAD_REQUEST;
  return false;
}

bool failed(struct failure *f, int errnum, const char *format, ...) {
  va_list args;
  va_start(args, format);
  int n = vsnprintf(f->message, sizeof f->message, format, args);
  va_end(args);
  if (n >= 0 && (size_t)n < sizeof f->message)
    snprintf(f->message + n, sizeof f->message - (size_t)n, ": %s", strerror(errnum));
  f->kind = KIND_FAILED;
  f->code = errno_name(errnum);
  return false;
}

bool internal_failure(struct failure *f, int errnum, const char *doing) {
  snprintf(f->message, sizeof f->message, "%s: %s", doing, strerror(errnum));
  f->kind = KIND_INTERNAL;
  return false;
}

// A decoded request: its header, id and op, and the frame it came in.
struct request {
  const struct frame *frame;
  json_t *header;
  json_int_t id;
  const char *op;
};

// Unpacks the op's fields, id and op among them, refusing any other (the "!").
#define UNPACK(req, f, format, ...)                                             \
  unpack_strict(req, f, "{s?I s?s " format " !}", "id", &(json_int_t){0}, "op", \
                &(const char *){NULL}, ##__VA_ARGS__)

static bool unpack_strict(const struct request *req, struct failure *f, const char *format, ...) {
  json_error_t error;
  va_list args;
  va_start(args, format);
  int status = json_vunpack_ex(req->header, &error, 0, format, args);
  va_end(args);
  return status == 0 || bad_request(f, "%s", error.text);
}

static json_t *ok_answer(const struct request *req) {
  return json_pack("{s:I s:b}", "id", req->id, "ok", 1);
}

static json_t *ping(struct agent *a, const struct request *req, struct failure *f) {
  if (!UNPACK(req, f, "")) return NULL;
  json_t *answer = ok_answer(req);
  json_object_set_new(answer, "version", json_integer(PROTOCOL_VERSION));
  json_object_set_new(answer, "uptimeMs", json_integer(clock_ms(CLOCK_MONOTONIC) - a->started_ms));
  json_object_set_new(answer, "epochMs", json_integer(clock_ms(CLOCK_REALTIME)));
  json_object_set_new(answer, "reseeds", json_integer(a->reseeds));
  return answer;
}

static json_t *reseed(struct agent *a, const struct request *req, struct failure *f) {
  if (!UNPACK(req, f, "")) return NULL;
  if (!req->frame->has_blob) {
    bad_request(f, "reseed takes one blob: the entropy");
    return NULL;
  }
  if (!reseed_kernel(req->frame->blob, req->frame->blob_len, f)) return NULL;
  a->reseeds++;
  json_t *answer = ok_answer(req);
  json_object_set_new(answer, "entropyBytes", json_integer((json_int_t)req->frame->blob_len));
  json_object_set_new(answer, "reseeds", json_integer(a->reseeds));
  return answer;
}

static json_t *set_clock(const struct request *req, struct failure *f) {
  json_int_t epoch = 0;
  if (!UNPACK(req, f, "s?I", "epochMs", &epoch)) return NULL;
  if (epoch <= 0) {
    bad_request(f, "epochMs must be positive");
    return NULL;
  }
  int64_t previous = clock_ms(CLOCK_REALTIME);
  struct timeval tv = {.tv_sec = epoch / 1000, .tv_usec = (epoch % 1000) * 1000};
  if (settimeofday(&tv, NULL) != 0) {
    failed(f, errno, "settimeofday");
    return NULL;
  }
  json_t *answer = ok_answer(req);
  json_object_set_new(answer, "previousEpochMs", json_integer(previous));
  return answer;
}

static json_t *mount_request(const struct request *req, struct failure *f) {
  const char *fstype = "", *source = "", *target = "", *options = "";
  int read_only = 0;
  if (!UNPACK(req, f, "s?s s?s s?s s?b s?s", "fstype", &fstype, "source", &source, "target",
              &target, "readOnly", &read_only, "options", &options))
    return NULL;
  if (!mount_share(fstype, source, target, read_only, options, f)) return NULL;
  return ok_answer(req);
}

static bool unpack_bind(json_t *json, struct bind_spec *spec, struct failure *f) {
  json_error_t error;
  int read_only = 0;
  *spec = (struct bind_spec){.source = "", .target = ""};
  if (json_unpack_ex(json, &error, 0, "{s?s s?s s?b !}", "source", &spec->source, "target",
                     &spec->target, "readOnly", &read_only) != 0)
    return bad_request(f, "bind: %s", error.text);
  spec->read_only = read_only;
  return true;
}

static json_t *bind_request(const struct request *req, struct failure *f) {
  struct bind_spec spec = {.source = "", .target = ""};
  int read_only = 0;
  if (!UNPACK(req, f, "s?s s?s s?b", "source", &spec.source, "target", &spec.target, "readOnly",
              &read_only))
    return NULL;
  spec.read_only = read_only;
  return bind_mount(&spec, f) ? ok_answer(req) : NULL;
}

static json_t *remount_request(const struct request *req, struct failure *f) {
  const char *target = "";
  int read_only = 0, bind = 0;
  if (!UNPACK(req, f, "s?s s?b s?b", "target", &target, "readOnly", &read_only, "bind", &bind))
    return NULL;
  return remount(target, read_only, bind, f) ? ok_answer(req) : NULL;
}

static json_t *unmount_request(const struct request *req, struct failure *f) {
  const char *target = "";
  int lazy = 0, remove = 0;
  if (!UNPACK(req, f, "s?s s?b s?b", "target", &target, "lazy", &lazy, "remove", &remove))
    return NULL;
  return unmount(target, lazy, remove, f) ? ok_answer(req) : NULL;
}

// The strings of a JSON array, NULL-terminated (the array keeps owning them).
static const char **string_list(json_t *array, const char *field, struct failure *f) {
  size_t count = array == NULL ? 0 : json_array_size(array);
  if (array != NULL && !json_is_array(array)) {
    bad_request(f, "%s must be an array of strings", field);
    return NULL;
  }
  const char **list = calloc(count + 1, sizeof *list);
  for (size_t i = 0; i < count; i++) {
    list[i] = json_string_value(json_array_get(array, i));
    if (list[i] == NULL) {
      free(list);
      bad_request(f, "%s must be an array of strings", field);
      return NULL;
    }
  }
  return list;
}

// The env object as "NAME=value" strings, NULL-terminated; each string is the caller's.
static char **env_list(json_t *env, struct failure *f) {
  if (env != NULL && !json_is_object(env)) {
    bad_request(f, "env must be an object of strings");
    return NULL;
  }
  size_t count = env == NULL ? 0 : json_object_size(env), i = 0;
  char **list = calloc(count + 1, sizeof *list);
  const char *name;
  json_t *value;
  json_object_foreach(env, name, value) {
    if (!json_is_string(value)) {
      bad_request(f, "env %s must be a string", name);
      break;
    }
    if (asprintf(&list[i++], "%s=%s", name, json_string_value(value)) < 0) abort();
  }
  if (f->kind != NULL) {
    for (size_t j = 0; j < i; j++) free(list[j]);
    free(list);
    return NULL;
  }
  return list;
}

static bool absolute_paths(const char **paths) {
  for (; *paths != NULL; paths++)
    if ((*paths)[0] != '/' || strlen(*paths) >= PATH_MAX_BYTES) return false;
  return true;
}

static json_t *exec_request(struct agent *a, const struct request *req, struct bytes *output,
                            struct failure *f) {
  json_t *argv_json = NULL, *env_json = NULL, *unbinds_json = NULL, *binds_json = NULL;
  struct exec_request exec = {.cwd = ""};
  json_int_t timeout_ms = 0, max_output = 0;
  if (!UNPACK(req, f, "s?o s?o s?s s?I s?I s?o s?o", "argv", &argv_json, "env", &env_json, "cwd",
              &exec.cwd, "timeoutMs", &timeout_ms, "maxOutputBytes", &max_output, "unbinds",
              &unbinds_json, "binds", &binds_json))
    return NULL;
  exec.timeout_ms = timeout_ms;
  exec.max_output_bytes = max_output;

  json_t *answer = NULL;
  const char **unbinds = NULL;
  char **env = NULL;
  struct bind_spec *binds = NULL;
  size_t bind_count = json_array_size(binds_json);
  struct exec_result res = {0};

  // Everything is checked before anything is done for it, binds included.
  if ((exec.argv = string_list(argv_json, "argv", f)) == NULL) goto out;
  if (exec.argv[0] == NULL || exec.argv[0][0] == '\0') {
    bad_request(f, "argv must name a command");
    goto out;
  }
  if ((env = env_list(env_json, f)) == NULL) goto out;
  exec.env = (const char **)env;
  if (timeout_ms < 0) {
    bad_request(f, "timeoutMs must not be negative");
    goto out;
  }
  if (max_output < 0 || max_output > MAX_OUTPUT_CEILING) {
    bad_request(f, "maxOutputBytes must be 0 … %d", MAX_OUTPUT_CEILING);
    goto out;
  }
  if (strlen(exec.cwd) >= PATH_MAX_BYTES) {
    bad_request(f, "cwd of %zu bytes, at most %d", strlen(exec.cwd), PATH_MAX_BYTES - 1);
    goto out;
  }
  if ((unbinds = string_list(unbinds_json, "unbinds", f)) == NULL) goto out;
  if (!absolute_paths(unbinds)) {
    bad_request(f, "unbinds must be absolute paths under %d bytes", PATH_MAX_BYTES);
    goto out;
  }
  if (binds_json != NULL && !json_is_array(binds_json)) {
    bad_request(f, "binds must be an array");
    goto out;
  }
  binds = calloc(bind_count + 1, sizeof *binds);
  for (size_t i = 0; i < bind_count; i++) {
    if (!unpack_bind(json_array_get(binds_json, i), &binds[i], f)) goto out;
    if (strlen(binds[i].source) >= PATH_MAX_BYTES || strlen(binds[i].target) >= PATH_MAX_BYTES) {
      bad_request(f, "bind paths must be under %d bytes", PATH_MAX_BYTES);
      goto out;
    }
  }

  for (const char **target = unbinds; *target != NULL; target++)
    if (!unmount(*target, false, true, f)) {
      f->step = "unbind";
      goto out;
    }
  for (size_t i = 0; i < bind_count; i++)
    if (!bind_mount(&binds[i], f)) {
      f->step = "bind";
      goto out;
    }

  if (req->frame->has_blob) {
    exec.stdin_data = req->frame->blob;
    exec.stdin_len = req->frame->blob_len;
  }
  if (!run_command(a, &exec, &res, f)) goto out;
  answer = ok_answer(req);
  json_object_set_new(answer, "exitCode", json_integer(res.exit_code));
  if (res.signal != 0) json_object_set_new(answer, "signal", json_integer(res.signal));
  json_object_set_new(answer, "timedOut", json_boolean(res.timed_out));
  json_object_set_new(answer, "durationMs", json_integer(res.duration_ms));
  json_object_set_new(answer, "stdoutTruncated", json_boolean(res.out_truncated));
  json_object_set_new(answer, "stderrTruncated", json_boolean(res.err_truncated));
  output[0] = res.out;
  output[1] = res.err;
out:
  if (env != NULL)
    for (char **e = env; *e != NULL; e++) free(*e);
  free(env);
  free(exec.argv);
  free(unbinds);
  free(binds);
  if (answer == NULL) {
    // A command that failed half way may have left output the answer does not carry.
    bytes_free(&res.out);
    bytes_free(&res.err);
  }
  return answer;
}

static json_t *error_answer(json_int_t id, const struct failure *f) {
  json_t *error = json_pack("{s:s s:s}", "kind", f->kind, "message", f->message);
  if (f->code != NULL) json_object_set_new(error, "code", json_string(f->code));
  if (f->step != NULL) json_object_set_new(error, "step", json_string(f->step));
  return json_pack("{s:I s:b s:o}", "id", id, "ok", 0, "error", error);
}

void handle_request(struct agent *a, const struct frame *frame, struct bytes *answer_frame) {
  struct failure f = {0};
  struct bytes output[2] = {{0}};
  json_t *answer = NULL;
  json_error_t error;
  struct request req = {.frame = frame, .op = ""};
  req.header = json_loadb(frame->header, frame->header_len, JSON_REJECT_DUPLICATES, &error);
  if (req.header == NULL || !json_is_object(req.header)) {
    bad_request(&f, "header is not a JSON object: %s",
                req.header == NULL ? error.text : "another JSON value");
  } else if (json_unpack_ex(req.header, &error, 0, "{s?I s?s}", "id", &req.id, "op", &req.op) !=
             0) {
    bad_request(&f, "header is not a request: %s", error.text);
  } else if (req.id < 0 || req.id > UINT32_MAX) {
    req.id = 0;
    bad_request(&f, "id must be a u32");
  } else if (strcmp(req.op, "ping") == 0) {
    answer = ping(a, &req, &f);
  } else if (strcmp(req.op, "reseed") == 0) {
    answer = reseed(a, &req, &f);
  } else if (strcmp(req.op, "setClock") == 0) {
    answer = set_clock(&req, &f);
  } else if (strcmp(req.op, "mount") == 0) {
    answer = mount_request(&req, &f);
  } else if (strcmp(req.op, "bind") == 0) {
    answer = bind_request(&req, &f);
  } else if (strcmp(req.op, "remount") == 0) {
    answer = remount_request(&req, &f);
  } else if (strcmp(req.op, "unmount") == 0) {
    answer = unmount_request(&req, &f);
  } else if (strcmp(req.op, "exec") == 0) {
    answer = exec_request(a, &req, output, &f);
  } else {
    bad_request(&f, "unknown op \"%s\"", req.op);
  }
  if (answer == NULL) {
    if (f.kind == NULL) internal_failure(&f, ENOMEM, "answer");
    answer = error_answer(req.id, &f);
    encode_frame(answer_frame, answer, NULL, 0);
  } else {
    encode_frame(answer_frame, answer, output, strcmp(req.op, "exec") == 0 ? 2 : 0);
  }
  json_decref(answer);
  json_decref(req.header);
  bytes_free(&output[0]);
  bytes_free(&output[1]);
}
