/*
 * xferproxy's session client: the first process of a reverse session.
 *
 * sshd runs `xferproxy reverse` (ForceCommand) once per SSH session and the launcher execs this
 * client for it. The client asks the DNAT service to decide the session over the service's Unix
 * socket, in the lines platform/thin_session.ts speaks (reverse/decide_protocol.ts): it sends the
 * few environment variables a decision reads, reads the files the service asks for as the
 * session's own user, writes the service's lines for the client to stderr, then execs what the
 * service says (OpenSSH's ssh) or exits with its status. Who the session is, the service learns
 * from the kernel (the socket's peer credentials, a pidfd), never from here.
 *
 * When the service cannot decide (not running, its socket not root's, another config, an input
 * this client does not send) the client execs the Deno command line the launcher gave it: the
 * whole program, which decides the session in its own process. Why C: a Deno runtime's start alone (~70 ms of CPU) is more
 * than a session's whole set-up budget, and at 20 arrivals a second it decides what a host can
 * take. The client trusts only the service (a root socket in a directory only root writes).
 *
 * argv: N ARG1 … ARGN FALLBACK …: the session's arguments (reverse [--config PATH]) and the
 * command line to exec when the service does not decide.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* platform/thin_session.ts's THIN_DEFAULTS and reverse/decide_protocol.ts's bounds. */
#define DEFAULT_CONFIG "/etc/xferproxy/aspera.conf"
#define DEFAULT_SOCKET "/run/xferproxy/dnat.sock"
enum {
  MAX_ENV_VALUE = 16384,
  MAX_DECIDE_LINE = 8 * MAX_ENV_VALUE,
  MAX_READ_BYTES = 96 * 1024,
  MAX_READS = 4,
  MAX_CONFIG_BYTES = 4 << 20,
  DECIDE_TIMEOUT_MS = 150000,
  /* A service whose backlog is full is waited for this long, then the session decides alone. */
  CONNECT_TIMEOUT_S = 10,
  MAX_JSON_DEPTH = 8,
  EXIT_PROXY_ERROR = 255,
};
static const char *const DECIDE_ENV[] = {
    "USER", "LOGNAME", "HOME", "TERM", "SSH_ORIGINAL_COMMAND", "XFERPROXY_HOST",
};
#define MAX_SAFE_INTEGER 9007199254740991ULL

/* ---- bytes ---------------------------------------------------------------------------------- */

static void fail_memory(void) {
  static const char line[] = "xferproxy: out of memory\n";
  (void)!write(2, line, sizeof line - 1);
  _exit(EXIT_PROXY_ERROR);
}

/* A growing byte string, always NUL-terminated. */
struct buf {
  char *data;
  size_t len, cap;
};

static void buf_add(struct buf *b, const void *bytes, size_t n) {
  if (n > SIZE_MAX / 4 - b->len) fail_memory();
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data) fail_memory();
    b->data = data;
    b->cap = cap;
  }
  if (n) memcpy(b->data + b->len, bytes, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void buf_printf(struct buf *b, const char *format, ...) {
  char text[256];
  va_list args;
  va_start(args, format);
  int n = vsnprintf(text, sizeof text, format, args);
  va_end(args);
  if (n > 0) buf_add(b, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
}

/* UTF-8 as a strict decoder takes it (no overlong forms, surrogates or code points past U+10FFFF). */
static bool utf8_valid(const unsigned char *s, size_t n) {
  for (size_t i = 0; i < n;) {
    unsigned c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return false;
    }
    if (n - i < len || s[i + 1] < lo || s[i + 1] > hi) return false;
    for (size_t k = 2; k < len; k++)
      if ((s[i + k] & 0xc0) != 0x80) return false;
    i += len;
  }
  return true;
}

/* The length JavaScript gives valid UTF-8 text (UTF-16 code units): the service's limits count them. */
static size_t js_length(const unsigned char *s, size_t n) {
  size_t units = 0;
  for (size_t i = 0; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80) units++;
    if (s[i] >= 0xf0) units++;
  }
  return units;
}

/* Text the service takes: valid UTF-8, no NUL, at most `max` JavaScript characters. */
static bool is_text(const char *s, size_t n, size_t max) {
  return utf8_valid((const unsigned char *)s, n) && !memchr(s, '\0', n) &&
         js_length((const unsigned char *)s, n) <= max;
}

/* A JSON string of valid UTF-8 bytes. */
static void json_string(struct buf *b, const char *s, size_t n) {
  buf_add(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      char escaped[2] = {'\\', (char)c};
      buf_add(b, escaped, 2);
    } else if (c < 0x20) {
      /* JSON.stringify's short forms: the service's line limit counts characters. */
      const char *shorter = c == '\b' ? "\\b" : c == '\t' ? "\\t" : c == '\n' ? "\\n"
                          : c == '\f' ? "\\f" : c == '\r' ? "\\r" : NULL;
      if (shorter) buf_add(b, shorter, 2);
      else buf_printf(b, "\\u%04x", c);
    } else {
      buf_add(b, &c, 1);
    }
  }
  buf_add(b, "\"", 1);
}

/* ---- JSON, as JSON.parse reads the service's lines ------------------------------------------ */

enum json_type { J_NULL, J_BOOL, J_NUMBER, J_STRING, J_ARRAY, J_OBJECT };

struct json {
  enum json_type type;
  bool boolean;
  double number;
  char *str; /* J_STRING: decoded bytes, NUL-terminated; `len` excludes the NUL */
  size_t len;
  struct json *first; /* J_ARRAY, J_OBJECT: the items, in order */
  size_t count;
  char *key; /* as an object's member */
  size_t key_len;
  struct json *next;
};

struct parser {
  const char *p, *end;
  int depth;
};

static void skip_space(struct parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
    ps->p++;
}

static bool hex4(struct parser *ps, unsigned *out) {
  if (ps->end - ps->p < 4) return false;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = *ps->p++;
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return false;
  }
  *out = v;
  return true;
}

static void utf8_put(struct buf *b, unsigned cp) {
  unsigned char out[4];
  size_t n;
  if (cp < 0x80) {
    out[0] = (unsigned char)cp;
    n = 1;
  } else if (cp < 0x800) {
    out[0] = (unsigned char)(0xc0 | cp >> 6);
    out[1] = (unsigned char)(0x80 | (cp & 0x3f));
    n = 2;
  } else if (cp < 0x10000) {
    out[0] = (unsigned char)(0xe0 | cp >> 12);
    out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
    out[2] = (unsigned char)(0x80 | (cp & 0x3f));
    n = 3;
  } else {
    out[0] = (unsigned char)(0xf0 | cp >> 18);
    out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (unsigned char)(0x80 | (cp & 0x3f));
    n = 4;
  }
  buf_add(b, out, n);
}

/* A string at `"`. A lone surrogate is refused: the service never sends one. */
static bool parse_string(struct parser *ps, char **out, size_t *out_len) {
  struct buf b = {0};
  buf_add(&b, "", 0);
  ps->p++;
  while (ps->p < ps->end) {
    unsigned char c = (unsigned char)*ps->p++;
    if (c == '"') {
      *out = b.data;
      *out_len = b.len;
      return true;
    }
    if (c < 0x20) break;
    if (c != '\\') {
      buf_add(&b, &c, 1);
      continue;
    }
    if (ps->p >= ps->end) break;
    char e = *ps->p++;
    const char *simple = strchr("\"\\/bfnrt", e);
    if (e && simple) {
      static const char decoded[] = "\"\\/\b\f\n\r\t";
      buf_add(&b, &decoded[simple - "\"\\/bfnrt"], 1);
      continue;
    }
    unsigned cp;
    if (e != 'u' || !hex4(ps, &cp)) break;
    if (cp >= 0xd800 && cp <= 0xdbff) {
      unsigned low;
      if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u') break;
      ps->p += 2;
      if (!hex4(ps, &low) || low < 0xdc00 || low > 0xdfff) break;
      cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
    } else if (cp >= 0xdc00 && cp <= 0xdfff) {
      break;
    }
    utf8_put(&b, cp);
  }
  free(b.data);
  return false;
}

static struct json *parse_value(struct parser *ps);

static struct json *new_json(enum json_type type) {
  struct json *v = calloc(1, sizeof *v);
  if (!v) fail_memory();
  v->type = type;
  return v;
}

static bool parse_number(struct parser *ps, double *out) {
  const char *start = ps->p;
  if (ps->p < ps->end && *ps->p == '-') ps->p++;
  if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') return false;
  if (*ps->p == '0') ps->p++;
  else
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
  if (ps->p < ps->end && *ps->p == '.') {
    ps->p++;
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') return false;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
  }
  if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
    ps->p++;
    if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) ps->p++;
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') return false;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
  }
  char text[64];
  size_t n = (size_t)(ps->p - start);
  if (n >= sizeof text) return false;
  memcpy(text, start, n);
  text[n] = '\0';
  *out = strtod(text, NULL);
  return true;
}

static bool parse_literal(struct parser *ps, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return false;
  ps->p += n;
  return true;
}

/* The items of an array or object, up to `close`; members carry their keys. */
static bool parse_items(struct parser *ps, struct json *into, char close) {
  struct json **tail = &into->first;
  ps->p++;
  skip_space(ps);
  if (ps->p < ps->end && *ps->p == close) {
    ps->p++;
    return true;
  }
  for (;;) {
    char *key = NULL;
    size_t key_len = 0;
    if (close == '}') {
      if (ps->p >= ps->end || *ps->p != '"' || !parse_string(ps, &key, &key_len)) return false;
      skip_space(ps);
      if (ps->p >= ps->end || *ps->p++ != ':') return false;
    }
    struct json *item = parse_value(ps);
    if (!item) return false;
    item->key = key;
    item->key_len = key_len;
    *tail = item;
    tail = &item->next;
    into->count++;
    skip_space(ps);
    if (ps->p >= ps->end) return false;
    char c = *ps->p++;
    if (c == close) return true;
    if (c != ',') return false;
    skip_space(ps);
  }
}

static struct json *parse_value(struct parser *ps) {
  skip_space(ps);
  if (ps->p >= ps->end) return NULL;
  struct json *v;
  switch (*ps->p) {
  case '{':
  case '[':
    if (++ps->depth > MAX_JSON_DEPTH) return NULL;
    v = new_json(*ps->p == '{' ? J_OBJECT : J_ARRAY);
    if (!parse_items(ps, v, *ps->p == '{' ? '}' : ']')) return NULL;
    ps->depth--;
    return v;
  case '"':
    v = new_json(J_STRING);
    return parse_string(ps, &v->str, &v->len) ? v : NULL;
  case 't':
  case 'f':
    v = new_json(J_BOOL);
    v->boolean = *ps->p == 't';
    return parse_literal(ps, v->boolean ? "true" : "false") ? v : NULL;
  case 'n':
    return parse_literal(ps, "null") ? new_json(J_NULL) : NULL;
  default:
    v = new_json(J_NUMBER);
    return parse_number(ps, &v->number) ? v : NULL;
  }
}

/* One line as JSON.parse takes it: a JSON value and nothing else. Leaks: the process execs soon. */
static struct json *parse_json(const char *text, size_t n) {
  if (!utf8_valid((const unsigned char *)text, n)) return NULL;
  struct parser ps = {text, text + n, 0};
  struct json *v = parse_value(&ps);
  skip_space(&ps);
  return v && ps.p == ps.end ? v : NULL;
}

/* An object's member; the last of a repeated key, as JSON.parse keeps it. */
static const struct json *member(const struct json *object, const char *key) {
  const struct json *found = NULL;
  if (!object || object->type != J_OBJECT) return NULL;
  for (const struct json *m = object->first; m; m = m->next)
    if (m->key_len == strlen(key) && memcmp(m->key, key, m->key_len) == 0) found = m;
  return found;
}

static bool is_op(const struct json *message, const char *op) {
  const struct json *v = member(message, "op");
  return v && v->type == J_STRING && strcmp(v->str, op) == 0 && v->len == strlen(op);
}

static bool json_text(const struct json *v, size_t max) {
  return v && v->type == J_STRING && is_text(v->str, v->len, max);
}

/* An array of at most `max_items` texts of at most `max` characters (at least `min_items`). */
static bool json_texts(const struct json *v, size_t min_items, size_t max_items, size_t max) {
  if (!v || v->type != J_ARRAY || v->count < min_items || v->count > max_items) return false;
  for (const struct json *item = v->first; item; item = item->next)
    if (!json_text(item, max)) return false;
  return true;
}

/* NULL-terminated strings of an array json_texts accepted. */
static char **string_table(const struct json *list) {
  char **table = calloc(list->count + 1, sizeof *table);
  if (!table) fail_memory();
  size_t i = 0;
  for (const struct json *item = list->first; item; item = item->next) table[i++] = item->str;
  return table;
}

/* ---- the conversation ----------------------------------------------------------------------- */

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Whether `fd` is ready before the deadline (an error or hang-up counts: the call says which). */
static bool ready(int fd, short events, long long deadline) {
  for (;;) {
    long long left = deadline - now_ms();
    if (left <= 0) return false;
    struct pollfd p = {.fd = fd, .events = events};
    int r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
    if (r > 0) return true;
    if (r == 0 || errno != EINTR) return false;
  }
}

static bool send_all(int fd, const char *bytes, size_t n, long long deadline) {
  while (n) {
    ssize_t sent = send(fd, bytes, n, MSG_NOSIGNAL);
    if (sent > 0) {
      bytes += sent;
      n -= (size_t)sent;
    } else if (sent < 0 && errno == EINTR) {
      continue;
    } else if (sent < 0 && errno == EAGAIN && ready(fd, POLLOUT, deadline)) {
      continue;
    } else {
      return false;
    }
  }
  return true;
}

/* The next line from the service into `line`; false at its end, past the longest line or the deadline. */
static bool next_line(int fd, struct buf *pending, struct buf *line, long long deadline) {
  for (;;) {
    char *newline = pending->len ? memchr(pending->data, '\n', pending->len) : NULL;
    if (newline) {
      size_t n = (size_t)(newline - pending->data);
      line->len = 0;
      buf_add(line, pending->data, n);
      memmove(pending->data, newline + 1, pending->len - n - 1);
      pending->len -= n + 1;
      return true;
    }
    if (pending->len > MAX_DECIDE_LINE || !ready(fd, POLLIN, deadline)) return false;
    char chunk[65536];
    ssize_t got = recv(fd, chunk, sizeof chunk, 0);
    if (got > 0) buf_add(pending, chunk, (size_t)got);
    else if (got == 0 || (errno != EINTR && errno != EAGAIN)) return false;
  }
}

/* A file opened only if regular (a FIFO would hang the read, a device may act on open). */
static int open_regular(const char *path, struct stat *st) {
  if (stat(path, st) != 0) return -1;
  if (!S_ISREG(st->st_mode)) {
    errno = EINVAL;
    return -2;
  }
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return -1;
  if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
    close(fd);
    errno = EINVAL;
    return -2;
  }
  return fd;
}

/* Up to `max` bytes of an open file; false when it holds more or cannot be read. */
static bool read_upto(int fd, struct buf *into, size_t max) {
  char chunk[16384];
  for (;;) {
    ssize_t got = read(fd, chunk, sizeof chunk);
    if (got == 0) return true;
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return false;
    buf_add(into, chunk, (size_t)got);
    if (into->len > max) return false;
  }
}

/* The answer to a read error, in the words Deno would have given the service. */
static void file_error(struct buf *out, const char *path, int error) {
  const char *kind = error == ENOENT ? "not_found" : error == EACCES || error == EPERM ? "denied" : "other";
  struct buf message = {0};
  buf_printf(&message, "%s (os error %d): stat '", strerror(error), error);
  buf_add(&message, path, strlen(path));
  buf_add(&message, "'", 1);
  size_t n = message.len < 512 ? message.len : 512;
  while (n && !utf8_valid((const unsigned char *)message.data, n)) n--;
  buf_printf(out, "{\"op\":\"file\",\"error\":\"%s\",\"message\":", kind);
  json_string(out, message.data, n);
  buf_add(out, "}\n", 2);
  free(message.data);
}

static void file_problem(struct buf *out, const char *message) {
  buf_add(out, "{\"op\":\"file\",\"error\":\"other\",\"message\":", 39);
  json_string(out, message, strlen(message));
  buf_add(out, "}\n", 2);
}

/* Reads a file as this session's user, for the service (its keyfile, known_hosts). */
static void file_answer(struct buf *out, const char *path) {
  struct stat st;
  int fd = open_regular(path, &st);
  if (fd == -2) {
    file_problem(out, "not a regular file");
    return;
  }
  if (fd < 0) {
    file_error(out, path, errno);
    return;
  }
  struct buf text = {0};
  buf_add(&text, "", 0);
  bool whole = st.st_size <= MAX_READ_BYTES && read_upto(fd, &text, MAX_READ_BYTES);
  int read_errno = errno;
  close(fd);
  if (!whole) {
    bool large = text.len > MAX_READ_BYTES || st.st_size > MAX_READ_BYTES;
    free(text.data);
    if (large) file_problem(out, "too large");
    else file_error(out, path, read_errno);
    return;
  }
  const unsigned char *t = (const unsigned char *)text.data;
  size_t skip = text.len >= 3 && t[0] == 0xef && t[1] == 0xbb && t[2] == 0xbf ? 3 : 0;
  if (!utf8_valid(t + skip, text.len - skip)) {
    free(text.data);
    file_problem(out, "TypeError: The encoded data was not valid for encoding utf-8");
    return;
  }
  buf_add(out, "{\"op\":\"file\",\"text\":", 20);
  json_string(out, text.data + skip, text.len - skip);
  buf_printf(out, ",\"uid\":%u,\"mode\":%u}\n", (unsigned)st.st_uid, (unsigned)st.st_mode);
  free(text.data);
}

/* Only root could have put a socket here: a directory of root's nobody else may write, a socket of root's in it. */
static bool roots_socket(const char *path) {
  char dir[PATH_MAX];
  const char *slash = strrchr(path, '/');
  size_t n = slash ? (size_t)(slash - path) : strlen(path);
  if (n >= sizeof dir) return false;
  memcpy(dir, path, n);
  dir[n] = '\0';
  if (n == 0) strcpy(dir, "/");
  struct stat d, s;
  return lstat(dir, &d) == 0 && S_ISDIR(d.st_mode) && d.st_uid == 0 && (d.st_mode & 022) == 0 &&
         lstat(path, &s) == 0 && S_ISSOCK(s.st_mode) && s.st_uid == 0;
}

static bool xml_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* `<service_socket>` of a config text (its comments dropped first), or NULL when it sets none. */
static char *service_socket_of(const char *text, size_t n) {
  struct buf plain = {0};
  buf_add(&plain, "", 0);
  for (size_t i = 0; i < n;) {
    const char *open = memmem(text + i, n - i, "<!--", 4);
    const char *close = open ? memmem(open + 4, (size_t)(text + n - open - 4), "-->", 3) : NULL;
    if (!close) {
      buf_add(&plain, text + i, n - i);
      break;
    }
    buf_add(&plain, text + i, (size_t)(open - text - i));
    i = (size_t)(close + 3 - text);
  }
  static const char open_tag[] = "<service_socket>", close_tag[] = "</service_socket>";
  const char *end = plain.data + plain.len;
  for (const char *at = plain.data; (at = memmem(at, (size_t)(end - at), open_tag, 16)); at++) {
    const char *p = at + 16;
    while (p < end && xml_space(*p)) p++;
    const char *value = p;
    while (p < end && *p != '<' && !xml_space(*p)) p++;
    size_t value_len = (size_t)(p - value);
    while (p < end && xml_space(*p)) p++;
    if (value_len && (size_t)(end - p) >= 17 && memcmp(p, close_tag, 17) == 0) {
      char *socket = strndup(value, value_len);
      free(plain.data);
      return socket;
    }
  }
  free(plain.data);
  return NULL;
}

enum outcome { UNDECIDED, DECIDED, LOST };

struct decision {
  const struct json *tell;
  const struct json *handoff; /* NULL: exit with `exit` */
  int exit;
};

/* The service's reply: DECIDED into `d`, UNDECIDED for a fallback, LOST for anything else. */
static enum outcome read_reply(const struct json *reply, struct decision *d) {
  if (is_op(reply, "fallback")) return json_text(member(reply, "reason"), 1024) ? UNDECIDED : LOST;
  if (!is_op(reply, "decided")) return LOST;
  d->tell = member(reply, "tell");
  if (!json_texts(d->tell, 0, 64, 1024)) return LOST;
  const struct json *exit_status = member(reply, "exit");
  d->handoff = member(reply, "handoff");
  if (exit_status) {
    double v = exit_status->number;
    if (exit_status->type != J_NUMBER || v < 0 || v > 255 || v != (int)v || d->handoff) return LOST;
    d->exit = (int)v;
    d->handoff = NULL;
    return DECIDED;
  }
  const struct json *path = member(d->handoff, "path");
  return json_text(path, 4096) && path->str[0] == '/' &&
                 json_texts(member(d->handoff, "argv"), 1, 256, 4 * MAX_ENV_VALUE) &&
                 json_texts(member(d->handoff, "env"), 0, 64, MAX_ENV_VALUE)
             ? DECIDED
             : LOST;
}

/* The decide request, or false when an input is one the service would not take (the full path decides). */
static bool decide_request(struct buf *out, const struct stat *config) {
  if ((unsigned long long)config->st_dev > MAX_SAFE_INTEGER ||
      (unsigned long long)config->st_ino > MAX_SAFE_INTEGER)
    return false;
  buf_printf(out, "{\"op\":\"decide\",\"config\":{\"dev\":%llu,\"ino\":%llu},\"pty\":%s,\"env\":{",
             (unsigned long long)config->st_dev, (unsigned long long)config->st_ino,
             isatty(0) ? "true" : "false");
  bool first = true;
  for (size_t i = 0; i < sizeof DECIDE_ENV / sizeof *DECIDE_ENV; i++) {
    const char *value = getenv(DECIDE_ENV[i]);
    if (!value) continue;
    if (!is_text(value, strlen(value), MAX_ENV_VALUE)) return false;
    if (!first) buf_add(out, ",", 1);
    first = false;
    json_string(out, DECIDE_ENV[i], strlen(DECIDE_ENV[i]));
    buf_add(out, ":", 1);
    json_string(out, value, strlen(value));
  }
  buf_add(out, "}}\n", 3);
  return true;
}

/* The config's identity and socket; false when there is none to ask (the full path says why). */
static bool read_config(const char *path, struct stat *st, char **socket) {
  int fd = open_regular(path, st);
  if (fd < 0) return false;
  struct buf text = {0};
  buf_add(&text, "", 0);
  bool ok = st->st_size <= MAX_CONFIG_BYTES && read_upto(fd, &text, MAX_CONFIG_BYTES);
  close(fd);
  if (ok) {
    char *named = service_socket_of(text.data, text.len);
    *socket = named ? named : strdup(DEFAULT_SOCKET);
    if (!*socket) fail_memory();
  }
  free(text.data);
  return ok;
}

static int connect_service(const char *path) {
  struct sockaddr_un address = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof address.sun_path || !roots_socket(path)) return -1;
  strcpy(address.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct timeval limit = {.tv_sec = CONNECT_TIMEOUT_S};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  /* Whoever listens must be root, whatever the path resolved to at connect: a directory on the
   * way that someone else can change cannot slip another listener in after roots_socket(). */
  struct ucred peer;
  socklen_t peer_len = sizeof peer;
  if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0 ||
      getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &peer_len) != 0 || peer_len != sizeof peer ||
      peer.uid != 0 || fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Asks the service to decide; the reply's tree stays in `d`. */
static enum outcome ask_service(const char *config_path, struct decision *d) {
  struct stat config;
  char *socket_path = NULL;
  if (!read_config(config_path, &config, &socket_path)) return UNDECIDED;
  struct buf request = {0};
  int fd = -1;
  if (!decide_request(&request, &config) || (fd = connect_service(socket_path)) < 0) {
    free(request.data);
    free(socket_path);
    return UNDECIDED;
  }
  free(socket_path);
  long long deadline = now_ms() + DECIDE_TIMEOUT_MS;
  bool sent = send_all(fd, request.data, request.len, deadline);
  free(request.data);
  if (!sent) {
    close(fd);
    return UNDECIDED;
  }
  enum outcome outcome = LOST;
  struct buf pending = {0}, line = {0};
  for (int reads = 0; reads <= MAX_READS && next_line(fd, &pending, &line, deadline); reads++) {
    const struct json *message = parse_json(line.data, line.len);
    if (!is_op(message, "read")) {
      outcome = message ? read_reply(message, d) : LOST;
      break;
    }
    const struct json *path = member(message, "path");
    if (!json_text(path, 4096) || path->str[0] != '/') break;
    struct buf answer = {0};
    file_answer(&answer, path->str);
    bool answered = send_all(fd, answer.data, answer.len, deadline);
    free(answer.data);
    if (!answered) break;
  }
  free(pending.data);
  free(line.data);
  close(fd);
  return outcome;
}

/* ---- the session ---------------------------------------------------------------------------- */

static void tell_client(const char *line, size_t n) {
  struct buf b = {0};
  buf_add(&b, line, n);
  buf_add(&b, "\n", 1);
  for (size_t sent = 0; sent < b.len;) {
    ssize_t w = write(2, b.data + sent, b.len - sent);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break; /* the client is gone */
    sent += (size_t)w;
  }
  free(b.data);
}

static void tell(const char *line) { tell_client(line, strlen(line)); }

/* Replaces this process with the hand-off: default signals, nothing blocked, no stray descriptor. */
static void hand_off(const struct json *handoff) {
  /* Realtime ones too: an ignored signal survives exec. (glibc's own two refuse, harmlessly.) */
  for (int signal_number = 1; signal_number <= SIGRTMAX; signal_number++)
    if (signal_number != SIGKILL && signal_number != SIGSTOP) signal(signal_number, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  long closed = -1;
#ifdef SYS_close_range
  closed = syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC, Linux 5.11+ */);
#endif
  if (closed != 0)
    for (int fd = 3; fd < 1024; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
  execve(member(handoff, "path")->str, string_table(member(handoff, "argv")),
         string_table(member(handoff, "env")));
}

/* The session's config file when its arguments are exactly `reverse [--config PATH]`, else NULL. */
static const char *thin_config(int argc, char **args) {
  if (argc < 1 || strcmp(args[0], "reverse") != 0) return NULL;
  if (argc == 1) return DEFAULT_CONFIG;
  if (argc == 3 && strcmp(args[1], "--config") == 0 && args[2][0]) return args[2];
  if (argc == 2 && strncmp(args[1], "--config=", 9) == 0 && args[1][9]) return args[1] + 9;
  return NULL;
}

int main(int argc, char **argv) {
  char *end = NULL;
  long n = argc > 1 ? strtol(argv[1], &end, 10) : -1;
  if (n < 0 || !end || *end || argv[1][0] == '\0' || n > argc - 3) {
    tell("xferproxy: the session client is started by the xferproxy launcher only");
    return EXIT_PROXY_ERROR;
  }
  char **args = argv + 2, **fallback = argv + 2 + n;
  const char *config = thin_config((int)n, args);
  struct decision d = {0};
  enum outcome outcome = config ? ask_service(config, &d) : UNDECIDED;
  if (outcome == LOST) {
    tell("xferproxy: the DNAT service did not answer; see the proxy log");
    return EXIT_PROXY_ERROR;
  }
  if (outcome == UNDECIDED) {
    execv(fallback[0], fallback);
    struct buf message = {0};
    buf_printf(&message, "xferproxy: internal error; cannot start %s: %s", fallback[0], strerror(errno));
    tell(message.data);
    return EXIT_PROXY_ERROR;
  }
  for (const struct json *line = d.tell->first; line; line = line->next)
    tell_client(line->str, line->len);
  if (!d.handoff) return d.exit;
  hand_off(d.handoff);
  int exec_errno = errno;
  struct buf message = {0};
  buf_printf(&message, "xferproxy: internal error; cannot start ");
  const struct json *path = member(d.handoff, "path");
  buf_add(&message, path->str, path->len);
  buf_printf(&message, ": %s", strerror(exec_errno));
  tell(message.data);
  return EXIT_PROXY_ERROR;
}
