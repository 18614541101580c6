/*
 * folder_driver.c: a luavirt driver written in plain C11.
 *
 * It serves read-only domains from a folder of libvirt domain XML files:
 * folder:///srv/domains makes every /srv/domains/<anything>.xml one shut-off,
 * persistent domain, named by the <name> element under its root <domain>.
 *
 * It exists to show that a driver needs nothing but luavirt_driver.h and libc:
 * one exported entry function returning a static LvDriverInfo, results handed to
 * the host through its emit_* callbacks, errors through set_error.
 *
 * The folder is read again on every call, so edits show up at once and the
 * connection holds no state beyond the directory path.
 *
 * Build:
 *   cc -std=c11 -Wall -Wextra -Werror -pedantic -fPIC -shared \
 *      -I../../plugin-api/include folder_driver.c -o libluavirt_folder.so
 */

/* opendir, open, fstat, strdup, strerror_r (the XSI one) are POSIX, not C11. */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "luavirt_driver.h"

/* An LvStr for a string literal, usable in static initializers. */
#define LV_S(lit) { (const uint8_t *)(lit), sizeof(lit) - 1 }

#if defined(__GNUC__)
#define PRINTF_LIKE(fmt, args) __attribute__((format(printf, fmt, args)))
#define EXPORTED __attribute__((visibility("default")))
#else
#define PRINTF_LIKE(fmt, args)
#define EXPORTED
#endif

/* Log levels of LvHostApi.log. */
enum { LOG_ERROR = 1, LOG_WARNING = 2, LOG_INFO = 3, LOG_DEBUG = 4 };

/* A domain XML file larger than this is surely something else named *.xml. */
#define MAX_XML_BYTES (16u * 1024u * 1024u)

/* The connection handle: what connect_open hands the host, and every call gets back. */
struct folder_conn {
    const LvHostApi *host; /* valid for the life of the connection */
    char *dir;             /* absolute path, no trailing slash (except "/" itself) */
};

/* One domain found in the folder. */
struct domain {
    char *name; /* decoded <name> text */
    char *uuid; /* decoded <uuid> text, or NULL when the file has none */
    char *file; /* file name inside the folder */
};

struct domain_list {
    struct domain *items;
    size_t len;
    size_t cap;
};

/* A file read into memory and parsed. */
struct loaded {
    char *xml; /* whole content, NUL added after len bytes */
    size_t len;
    char *name;
    char *uuid;
};

/* ---------------------------------------------------------------- small helpers */

static LvStr lv_str(const char *s)
{
    LvStr r = { (const uint8_t *)s, strlen(s) };
    return r;
}

/* printf's %.*s takes an int. */
static int int_len(size_t n)
{
    return n > (size_t)INT_MAX ? INT_MAX : (int)n;
}

static void error_text(int err, char *buf, size_t size)
{
    /* strerror_r rather than strerror: the host may call drivers from several threads. */
    if (strerror_r(err, buf, size) != 0)
        snprintf(buf, size, "error %d", err);
}

/* Formats into a fresh heap buffer; NULL when out of memory. */
static char *vformat(const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, again);
    va_end(again);
    if (n < 0)
        return NULL;
    char *buf = malloc((size_t)n + 1);
    if (buf == NULL)
        return NULL;
    if (vsnprintf(buf, (size_t)n + 1, fmt, ap) < 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Records the call's error and returns its code, so callers can `return fail(...)`. */
static int32_t fail(const LvHostApi *host, LvCall *call, int32_t code, const char *fmt, ...)
    PRINTF_LIKE(4, 5);
static int32_t fail(const LvHostApi *host, LvCall *call, int32_t code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(fmt, ap);
    va_end(ap);
    host->set_error(call, code, msg != NULL ? lv_str(msg) : (LvStr)LV_S("folder driver: out of memory"));
    free(msg);
    return code;
}

static void say(const LvHostApi *host, LvCall *call, int32_t level, const char *fmt, ...)
    PRINTF_LIKE(4, 5);
static void say(const LvHostApi *host, LvCall *call, int32_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = vformat(fmt, ap);
    va_end(ap);
    host->log(call, level, msg != NULL ? lv_str(msg) : (LvStr)LV_S("folder driver: out of memory"));
    free(msg);
}

static int32_t out_of_memory(const LvHostApi *host, LvCall *call)
{
    host->set_error(call, LV_ERR_INTERNAL, (LvStr)LV_S("folder driver: out of memory"));
    return LV_ERR_INTERNAL;
}

/* dir + "/" + file, without doubling the slash when dir is "/". */
static char *join_path(const char *dir, const char *file)
{
    size_t dl = strlen(dir), fl = strlen(file);
    bool slash = dl > 0 && dir[dl - 1] != '/';
    char *path = malloc(dl + slash + fl + 1);
    if (path == NULL)
        return NULL;
    memcpy(path, dir, dl);
    if (slash)
        path[dl] = '/';
    memcpy(path + dl + slash, file, fl + 1);
    return path;
}

static bool lv_str_equals(LvStr a, const char *b)
{
    size_t bl = strlen(b);
    return a.len == bl && (bl == 0 || memcmp(a.ptr, b, bl) == 0);
}

/* ---------------------------------------------------------------- URI */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Percent-decodes n bytes into a fresh NUL-terminated string, as the Rust kit's URI
 * parser does, so folder:///srv/my%20domains works. Sets *bad on a malformed escape
 * or an encoded NUL (which no path can hold); returns NULL then or when out of memory.
 */
static char *percent_decode(const char *s, size_t n, bool *bad)
{
    *bad = false;
    char *out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (n - i < 3) { /* fewer than two characters follow */
                *bad = true;
                break;
            }
            int h = hex_value(s[i + 1]), l = hex_value(s[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0)) {
                *bad = true;
                break;
            }
            out[o++] = (char)(h * 16 + l);
            i += 2;
        } else if (s[i] == '\0') {
            *bad = true;
            break;
        } else {
            out[o++] = s[i];
        }
    }
    if (*bad) {
        free(out);
        return NULL;
    }
    out[o] = '\0';
    return out;
}

static int32_t folder_connect_open(const LvHostApi *host, LvStr uri, uint32_t flags, void **conn_out,
                                   LvCall *call)
{
    if (host == NULL || conn_out == NULL)
        return LV_ERR_INVALID_ARG; /* nothing to report the error through */
    if (flags != 0)
        return fail(host, call, LV_ERR_UNSUPPORTED,
                    "folder driver: connect flags 0x%x are not supported; pass 0", (unsigned)flags);
    if (uri.ptr == NULL && uri.len != 0)
        return fail(host, call, LV_ERR_INVALID_ARG, "folder driver: the URI pointer is NULL");

    const char *text = uri.len != 0 ? (const char *)uri.ptr : "";
    int tl = int_len(uri.len);
    static const char prefix[] = "folder://";
    size_t pl = sizeof(prefix) - 1;

    /* The scheme is case-insensitive; the host picked this driver by it, but check anyway. */
    bool scheme_ok = uri.len >= pl;
    for (size_t i = 0; scheme_ok && i < pl; i++) {
        char c = text[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        scheme_ok = c == prefix[i];
    }
    if (!scheme_ok)
        return fail(host, call, LV_ERR_INVALID_URI,
                    "folder driver: cannot serve URI '%.*s'; write folder:///absolute/path/to/dir", tl, text);

    /* Authority and path end where the query begins; the query means nothing here. */
    const char *rest = text + pl;
    size_t rl = uri.len - pl;
    const char *query = memchr(rest, '?', rl);
    if (query != NULL)
        rl = (size_t)(query - rest);
    const char *slash = memchr(rest, '/', rl);
    size_t host_len = slash != NULL ? (size_t)(slash - rest) : rl;
    if (host_len != 0)
        return fail(host, call, LV_ERR_INVALID_URI,
                    "folder driver: URI '%.*s' names host '%.*s', but folders are local only; "
                    "write folder:///absolute/path/to/dir",
                    tl, text, int_len(host_len), rest);
    if (slash == NULL)
        return fail(host, call, LV_ERR_INVALID_URI,
                    "folder driver: URI '%.*s' has no path; write folder:///absolute/path/to/dir", tl, text);

    bool bad;
    char *dir = percent_decode(slash, rl - host_len, &bad);
    if (dir == NULL && bad)
        return fail(host, call, LV_ERR_INVALID_URI,
                    "folder driver: URI '%.*s' has a bad %%-escape or a NUL in its path; "
                    "write %%XX with two hex digits, not %%00",
                    tl, text);
    if (dir == NULL)
        return out_of_memory(host, call);

    /* Trailing slashes only make messages and joined paths uglier. */
    for (size_t n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--)
        dir[n - 1] = '\0';

    struct stat st;
    int err = 0;
    if (stat(dir, &st) != 0)
        err = errno;
    else if (!S_ISDIR(st.st_mode))
        err = ENOTDIR;
    if (err != 0) {
        char why[128];
        error_text(err, why, sizeof why);
        int32_t rc = fail(host, call, LV_ERR_INVALID_URI,
                          "folder driver: %s is not a directory: %s; create it or fix the URI", dir, why);
        free(dir);
        return rc;
    }

    struct folder_conn *conn = malloc(sizeof *conn);
    if (conn == NULL) {
        free(dir);
        return out_of_memory(host, call);
    }
    conn->host = host;
    conn->dir = dir;
    *conn_out = conn;
    return LV_OK;
}

static void folder_connect_close(void *handle)
{
    struct folder_conn *conn = handle;
    if (conn == NULL)
        return;
    free(conn->dir);
    free(conn);
}

/* ---------------------------------------------------------------- reading files */

/* Returned by the parser when malloc failed, told apart from real reasons by address. */
static const char OUT_OF_MEMORY[] = "out of memory";

enum load_result { LOAD_OK, LOAD_SKIP, LOAD_NO_MEMORY };

/*
 * Reads the whole regular file at path into a fresh buffer with a NUL after the data.
 * On LOAD_SKIP, why says what went wrong.
 */
static enum load_result read_whole_file(const char *path, char **data, size_t *len, char *why,
                                        size_t why_size)
{
    char err[128];
    /* O_NONBLOCK so that a FIFO named x.xml cannot hang the call; no effect on regular files. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        error_text(errno, err, sizeof err);
        snprintf(why, why_size, "cannot open it: %s", err);
        return LOAD_SKIP;
    }

    enum load_result result = LOAD_SKIP;
    char *buf = NULL;
    size_t n = 0;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        error_text(errno, err, sizeof err);
        snprintf(why, why_size, "cannot stat it: %s", err);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, why_size, "it is not a regular file");
        goto out;
    }
    if (st.st_size > (off_t)MAX_XML_BYTES) {
        snprintf(why, why_size, "it is larger than %u MiB, too large for domain XML",
                 MAX_XML_BYTES / 1024u / 1024u);
        goto out;
    }

    /* st_size is a hint only: the file may grow or shrink while we read it. */
    size_t cap = (size_t)st.st_size + 1;
    buf = malloc(cap);
    if (buf == NULL) {
        result = LOAD_NO_MEMORY;
        goto out;
    }
    for (;;) {
        if (n + 1 == cap) { /* full, keeping one byte for the NUL */
            if (cap > MAX_XML_BYTES) {
                snprintf(why, why_size, "it is larger than %u MiB, too large for domain XML",
                         MAX_XML_BYTES / 1024u / 1024u);
                goto out;
            }
            size_t bigger = cap < 4096 ? 4096 : cap * 2;
            char *grown = realloc(buf, bigger);
            if (grown == NULL) {
                result = LOAD_NO_MEMORY;
                goto out;
            }
            buf = grown;
            cap = bigger;
        }
        ssize_t got = read(fd, buf + n, cap - 1 - n);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            error_text(errno, err, sizeof err);
            snprintf(why, why_size, "cannot read it: %s", err);
            goto out;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    buf[n] = '\0';
    result = LOAD_OK;

out:
    /* A read-only descriptor loses nothing if close fails, but say so rather than hide it. */
    if (close(fd) != 0 && result == LOAD_OK) {
        error_text(errno, err, sizeof err);
        snprintf(why, why_size, "cannot close it: %s", err);
        result = LOAD_SKIP;
    }
    if (result != LOAD_OK) {
        free(buf);
        return result;
    }
    *data = buf;
    *len = n;
    return LOAD_OK;
}

/* The host takes UTF-8 only, and a name must be valid UTF-8 to be typed back. */
static bool valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t more;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) {
            more = 1, cp = c & 0x1Fu, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            more = 2, cp = c & 0x0Fu, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            more = 3, cp = c & 0x07u, min = 0x10000;
        } else {
            return false;
        }
        if (n - i <= more)
            return false;
        for (size_t k = 1; k <= more; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        /* Overlong forms, surrogates and values past Unicode are all invalid. */
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += more + 1;
    }
    return true;
}

/* ---------------------------------------------------------------- scanning XML */

/*
 * This is not an XML parser, only a careful scan: enough to find <name> and <uuid>
 * directly under the root <domain> while stepping over comments, processing
 * instructions, CDATA sections and quoted attribute values that may hold '<' or '>'.
 */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool starts_with(const char *p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0;
}

static const char *find(const char *p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    for (; (size_t)(end - p) >= n; p++)
        if (memcmp(p, lit, n) == 0)
            return p;
    return NULL;
}

/* Length of the element name that starts at p (just after '<' or '</'). */
static size_t tag_name_len(const char *p, const char *end)
{
    const char *q = p;
    while (q < end && !is_space(*q) && *q != '/' && *q != '>')
        q++;
    return (size_t)(q - p);
}

static bool name_is(const char *p, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(p, lit, n) == 0;
}

/* Past the '>' of the start tag at p, skipping quoted attribute values; NULL if unclosed. */
static const char *start_tag_end(const char *p, const char *end, bool *self_closing)
{
    char quote = 0;
    for (const char *q = p + 1; q < end; q++) {
        if (quote != 0) {
            if (*q == quote)
                quote = 0;
        } else if (*q == '"' || *q == '\'') {
            quote = *q;
        } else if (*q == '>') {
            *self_closing = q[-1] == '/';
            return q + 1;
        }
    }
    return NULL;
}

/* Past "</name   >" at p when it closes the element called name; NULL otherwise. */
static const char *end_tag_end(const char *p, const char *end, const char *name, size_t name_len)
{
    if (!starts_with(p, end, "</"))
        return NULL;
    p += 2;
    if (tag_name_len(p, end) != name_len || memcmp(p, name, name_len) != 0)
        return NULL;
    p += name_len;
    while (p < end && is_space(*p))
        p++;
    return p < end && *p == '>' ? p + 1 : NULL;
}

/*
 * When p starts a comment, processing instruction or CDATA section, returns the position
 * after it (NULL when it is never closed, with *unclosed saying which); otherwise p.
 */
static const char *skip_markup(const char *p, const char *end, const char **unclosed)
{
    static const struct {
        const char *open, *close, *what;
    } kinds[] = {
        { "<!--", "-->", "a comment is not closed" },
        { "<?", "?>", "a processing instruction is not closed" },
        { "<![CDATA[", "]]>", "a CDATA section is not closed" },
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (starts_with(p, end, kinds[i].open)) {
            const char *q = find(p + strlen(kinds[i].open), end, kinds[i].close);
            if (q == NULL) {
                *unclosed = kinds[i].what;
                return NULL;
            }
            return q + strlen(kinds[i].close);
        }
    }
    return p;
}

/* Past a <!DOCTYPE ...> at p, internal subset [...] included; NULL if unclosed. */
static const char *skip_doctype(const char *p, const char *end)
{
    int brackets = 0;
    char quote = 0;
    for (; p < end; p++) {
        if (quote != 0) {
            if (*p == quote)
                quote = 0;
        } else if (*p == '"' || *p == '\'') {
            quote = *p;
        } else if (*p == '[') {
            brackets++;
        } else if (*p == ']') {
            brackets--;
        } else if (*p == '>' && brackets <= 0) {
            return p + 1;
        }
    }
    return NULL;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The value of a character reference body like "#65" or "#x41"; 0 when invalid. */
static uint32_t char_ref_value(const char *s, size_t n)
{
    bool hex = n >= 2 && s[1] == 'x';
    size_t first = hex ? 2 : 1;
    if (n <= first)
        return 0;
    uint32_t cp = 0;
    for (size_t i = first; i < n; i++) {
        int d = hex ? hex_value(s[i]) : (s[i] >= '0' && s[i] <= '9' ? s[i] - '0' : -1);
        if (d < 0)
            return 0;
        cp = cp * (hex ? 16u : 10u) + (uint32_t)d;
        if (cp > 0x10FFFF)
            return 0;
    }
    /* Only characters XML allows: no NUL, no other C0 controls but tab, LF, CR, no surrogates. */
    if ((cp < 0x20 && cp != 0x9 && cp != 0xA && cp != 0xD) || (cp >= 0xD800 && cp <= 0xDFFF) ||
        cp == 0xFFFE || cp == 0xFFFF)
        return 0;
    return cp;
}

/*
 * Decodes n bytes of element text into a fresh string: the five predefined entities
 * and character references. Returns NULL on success, else why the text is malformed.
 * The result never grows: every reference is at least as long as what it stands for.
 */
static const char *decode_text(const char *s, size_t n, char **out)
{
    static const struct {
        const char *name;
        char ch;
    } entities[] = {
        { "amp", '&' }, { "lt", '<' }, { "gt", '>' }, { "quot", '"' }, { "apos", '\'' },
    };
    char *buf = malloc(n + 1);
    if (buf == NULL)
        return OUT_OF_MEMORY;
    size_t o = 0, i = 0;
    while (i < n) {
        if (s[i] != '&') {
            buf[o++] = s[i++];
            continue;
        }
        const char *body = s + i + 1;
        const char *semi = memchr(body, ';', n - i - 1);
        size_t bl = semi != NULL ? (size_t)(semi - body) : 0;
        bool known = false;
        for (size_t k = 0; semi != NULL && k < sizeof entities / sizeof entities[0]; k++) {
            if (name_is(body, bl, entities[k].name)) {
                buf[o++] = entities[k].ch;
                known = true;
                break;
            }
        }
        if (!known && semi != NULL && bl >= 2 && body[0] == '#') {
            uint32_t cp = char_ref_value(body, bl);
            if (cp != 0) {
                o += utf8_encode(cp, buf + o);
                known = true;
            }
        }
        if (!known) {
            free(buf);
            return "it has a '&' that starts no predefined entity or character reference "
                   "(write & as &amp;)";
        }
        i += 1 + bl + 1;
    }
    buf[o] = '\0';
    *out = buf;
    return NULL;
}

static const char *scan_domain(const char *xml, size_t len, char **name_out, char **uuid_out)
{
    const char *p = xml, *end = xml + len, *q, *unclosed = NULL;
    bool empty;

    if (starts_with(p, end, "\xEF\xBB\xBF")) /* a UTF-8 byte order mark */
        p += 3;

    /* Before the root: XML declaration, comments, processing instructions, DOCTYPE. */
    for (;;) {
        while (p < end && is_space(*p))
            p++;
        if (p == end)
            return "it has no root element";
        if (*p != '<')
            return "it has text before the root element";
        if ((q = skip_markup(p, end, &unclosed)) == NULL)
            return unclosed;
        if (q != p) {
            p = q;
        } else if (starts_with(p, end, "<!DOCTYPE")) {
            if ((p = skip_doctype(p, end)) == NULL)
                return "its DOCTYPE is not closed";
        } else {
            break;
        }
    }

    if (!name_is(p + 1, tag_name_len(p + 1, end), "domain"))
        return "its root element is not <domain>";
    if ((p = start_tag_end(p, end, &empty)) == NULL)
        return "its <domain> start tag is not closed";

    /* Inside the root, depth 1 means "directly under <domain>". */
    int depth = empty ? 0 : 1;
    while (depth > 0) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (lt == NULL)
            return "its <domain> element is not closed";
        if ((q = skip_markup(lt, end, &unclosed)) == NULL)
            return unclosed;
        if (q != lt) {
            p = q;
            continue;
        }
        if (starts_with(lt, end, "<!"))
            return "it has unexpected <! markup inside <domain>";
        if (starts_with(lt, end, "</")) {
            if ((q = memchr(lt, '>', (size_t)(end - lt))) == NULL)
                return "it has an end tag that is not closed";
            depth--;
            p = q + 1;
            continue;
        }
        if ((q = start_tag_end(lt, end, &empty)) == NULL)
            return "it has a start tag that is not closed";

        size_t tn = tag_name_len(lt + 1, end);
        char **slot = NULL;
        if (depth == 1 && name_is(lt + 1, tn, "name"))
            slot = name_out;
        else if (depth == 1 && name_is(lt + 1, tn, "uuid"))
            slot = uuid_out;

        /* The first one counts, as libvirt reads ./name[1]; later ones are skipped like any element. */
        if (slot != NULL && *slot == NULL) {
            const char *text_end = q, *after = q;
            if (!empty) {
                text_end = memchr(q, '<', (size_t)(end - q));
                after = text_end != NULL ? end_tag_end(text_end, end, lt + 1, tn) : NULL;
                if (after == NULL)
                    return slot == name_out ? "its <name> holds more than plain text"
                                            : "its <uuid> holds more than plain text";
            }
            const char *why = decode_text(q, (size_t)(text_end - q), slot);
            if (why != NULL)
                return why;
            p = after;
            continue;
        }
        if (!empty)
            depth++;
        p = q;
    }

    if (*name_out == NULL)
        return "it has no <name> element directly under <domain>";
    if (**name_out == '\0')
        return "its <name> element is empty";
    return NULL;
}

/*
 * Reads and scans the file at path. On LOAD_OK, out holds the content, name and uuid
 * (free with free_loaded); on LOAD_SKIP, why says what is wrong with the file.
 */
static enum load_result load_domain_file(const char *path, struct loaded *out, char *why, size_t why_size)
{
    memset(out, 0, sizeof *out);
    enum load_result r = read_whole_file(path, &out->xml, &out->len, why, why_size);
    if (r != LOAD_OK)
        return r;

    const char *reason = NULL;
    /* A NUL byte cannot be in XML, and keeping them out lets the rest use C strings. */
    if (memchr(out->xml, '\0', out->len) != NULL)
        reason = "it holds a NUL byte, so it is not XML";
    else if (!valid_utf8((const unsigned char *)out->xml, out->len))
        reason = "it is not valid UTF-8 (luavirt reads UTF-8 domain XML only)";
    else
        reason = scan_domain(out->xml, out->len, &out->name, &out->uuid);
    if (reason == NULL)
        return LOAD_OK;

    free(out->xml);
    free(out->name);
    free(out->uuid);
    memset(out, 0, sizeof *out);
    if (reason == OUT_OF_MEMORY)
        return LOAD_NO_MEMORY;
    snprintf(why, why_size, "%s", reason);
    return LOAD_SKIP;
}

static void free_loaded(struct loaded *ld)
{
    free(ld->xml);
    free(ld->name);
    free(ld->uuid);
}

/* ---------------------------------------------------------------- scanning the folder */

static void free_list(struct domain_list *list)
{
    for (size_t i = 0; i < list->len; i++) {
        free(list->items[i].name);
        free(list->items[i].uuid);
        free(list->items[i].file);
    }
    free(list->items);
    memset(list, 0, sizeof *list);
}

static bool push_domain(struct domain_list *list, struct domain d)
{
    if (list->len == list->cap) {
        size_t cap = list->cap == 0 ? 16 : list->cap * 2;
        struct domain *items = realloc(list->items, cap * sizeof *items);
        if (items == NULL)
            return false;
        list->items = items;
        list->cap = cap;
    }
    list->items[list->len++] = d;
    return true;
}

/* By name, then by file name, so that the same folder always lists the same way. */
static int compare_domains(const void *a, const void *b)
{
    const struct domain *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c != 0 ? c : strcmp(x->file, y->file);
}

static bool has_xml_suffix(const char *file)
{
    size_t n = strlen(file);
    return n > 4 && strcmp(file + n - 4, ".xml") == 0;
}

/*
 * Collects the domains of the folder, sorted by name. Files that are not usable
 * are logged at `level` and skipped: a listing warns about them, a lookup by name
 * only mentions them at debug level.
 */
static int32_t scan_folder(struct folder_conn *conn, LvCall *call, int32_t level, struct domain_list *out)
{
    const LvHostApi *host = conn->host;
    char err[128], why[256];
    memset(out, 0, sizeof *out);

    DIR *dir = opendir(conn->dir);
    if (dir == NULL) {
        error_text(errno, err, sizeof err);
        return fail(host, call, LV_ERR_IO, "folder driver: cannot open folder %s: %s; check that it exists and is readable",
                    conn->dir, err);
    }

    int32_t rc = LV_OK;
    for (;;) {
        errno = 0; /* readdir reports errors only through errno */
        struct dirent *entry = readdir(dir);
        if (entry == NULL) {
            if (errno != 0) {
                error_text(errno, err, sizeof err);
                rc = fail(host, call, LV_ERR_IO, "folder driver: cannot list folder %s: %s", conn->dir, err);
            }
            break;
        }
        if (!has_xml_suffix(entry->d_name))
            continue;
        if (host->is_cancelled(call)) {
            rc = fail(host, call, LV_ERR_CANCELLED, "folder driver: reading folder %s was cancelled", conn->dir);
            break;
        }

        char *path = join_path(conn->dir, entry->d_name);
        if (path == NULL) {
            rc = out_of_memory(host, call);
            break;
        }
        struct loaded ld;
        enum load_result r = load_domain_file(path, &ld, why, sizeof why);
        if (r == LOAD_SKIP)
            say(host, call, level, "folder driver: skipping %s: %s", path, why);
        free(path);
        if (r == LOAD_SKIP)
            continue;
        if (r == LOAD_NO_MEMORY) {
            rc = out_of_memory(host, call);
            break;
        }

        struct domain d = { ld.name, ld.uuid, strdup(entry->d_name) };
        free(ld.xml); /* only the name and uuid are kept; lookups read the file again */
        if (d.file == NULL || !push_domain(out, d)) {
            free(d.name);
            free(d.uuid);
            free(d.file);
            rc = out_of_memory(host, call);
            break;
        }
    }
    if (closedir(dir) != 0) {
        error_text(errno, err, sizeof err);
        say(host, call, LOG_DEBUG, "folder driver: closing folder %s failed: %s", conn->dir, err);
    }
    if (rc != LV_OK) {
        free_list(out);
        return rc;
    }

    if (out->len > 1)
        qsort(out->items, out->len, sizeof out->items[0], compare_domains);

    /* Names must be unique: the file that sorts first keeps a repeated name. */
    size_t kept = 0;
    for (size_t i = 0; i < out->len; i++) {
        struct domain *d = &out->items[i];
        if (kept > 0 && strcmp(out->items[kept - 1].name, d->name) == 0) {
            say(host, call, level, "folder driver: skipping %s/%s: domain name '%s' is already used by %s",
                conn->dir, d->file, d->name, out->items[kept - 1].file);
            free(d->name);
            free(d->uuid);
            free(d->file);
            continue;
        }
        out->items[kept++] = *d;
    }
    out->len = kept;
    return LV_OK;
}

/* Finds domain `name` and loads its file into *out; on failure the error is already set. */
static int32_t find_domain(struct folder_conn *conn, LvStr name, LvCall *call, struct loaded *out)
{
    const LvHostApi *host = conn->host;
    if (name.ptr == NULL && name.len != 0)
        return fail(host, call, LV_ERR_INVALID_ARG, "folder driver: the domain name pointer is NULL");

    struct domain_list list;
    int32_t rc = scan_folder(conn, call, LOG_DEBUG, &list);
    if (rc != LV_OK)
        return rc;

    const struct domain *found = NULL;
    for (size_t i = 0; i < list.len && found == NULL; i++)
        if (lv_str_equals(name, list.items[i].name))
            found = &list.items[i];
    if (found == NULL) {
        free_list(&list);
        return fail(host, call, LV_ERR_NO_DOMAIN, "folder driver: no domain named '%.*s' in %s",
                    int_len(name.len), name.len != 0 ? (const char *)name.ptr : "", conn->dir);
    }

    char why[256];
    char *path = join_path(conn->dir, found->file);
    free_list(&list);
    if (path == NULL)
        return out_of_memory(host, call);
    enum load_result r = load_domain_file(path, out, why, sizeof why);
    if (r == LOAD_NO_MEMORY) {
        free(path);
        return out_of_memory(host, call);
    }
    if (r == LOAD_SKIP) {
        rc = fail(host, call, LV_ERR_IO, "folder driver: cannot use %s: %s", path, why);
        free(path);
        return rc;
    }
    /* The file was read twice; if it was rewritten in between, do not serve another domain. */
    if (!lv_str_equals(name, out->name)) {
        rc = fail(host, call, LV_ERR_IO, "folder driver: %s changed while it was read; try again", path);
        free_loaded(out);
        free(path);
        return rc;
    }
    free(path);
    return LV_OK;
}

/* ---------------------------------------------------------------- operations */

static LvParam param(const char *key, uint32_t kind)
{
    LvParam p;
    memset(&p, 0, sizeof p); /* reserved and the unused value fields must be zero */
    p.key = lv_str(key);
    p.kind = kind;
    return p;
}

static int32_t folder_list_domains(void *handle, uint32_t flags, LvCall *call)
{
    struct folder_conn *conn = handle;
    if (flags != 0)
        return fail(conn->host, call, LV_ERR_UNSUPPORTED,
                    "folder driver: list flags 0x%x are not supported; pass 0", (unsigned)flags);

    struct domain_list list;
    int32_t rc = scan_folder(conn, call, LOG_WARNING, &list);
    if (rc != LV_OK)
        return rc;

    for (size_t i = 0; i < list.len; i++) {
        const struct domain *d = &list.items[i];
        LvParam p[5];
        p[0] = param(LV_KEY_NAME, LV_PARAM_STRING);
        p[0].string_value = lv_str(d->name);
        p[1] = param(LV_KEY_UUID, LV_PARAM_STRING);
        p[1].string_value = lv_str(d->uuid != NULL ? d->uuid : "");
        p[2] = param(LV_KEY_STATE, LV_PARAM_UINT);
        p[2].uint_value = LV_STATE_SHUTOFF;
        p[3] = param(LV_KEY_ID, LV_PARAM_INT);
        p[3].int_value = -1; /* not running */
        p[4] = param(LV_KEY_PERSISTENT, LV_PARAM_BOOL);
        p[4].int_value = 1; /* a file on disk is a persistent definition */
        conn->host->emit_record(call, p, sizeof p / sizeof p[0]);
    }
    free_list(&list);
    return LV_OK;
}

static int32_t folder_domain_get_xml(void *handle, LvStr name, uint32_t flags, LvCall *call)
{
    struct folder_conn *conn = handle;
    /* LV_XML_INACTIVE changes nothing: the file is the persistent definition and nothing runs. */
    if ((flags & ~(uint32_t)LV_GET_XML_FLAGS) != 0)
        return fail(conn->host, call, LV_ERR_UNSUPPORTED,
                    "folder driver: dumpxml flags 0x%x are not supported; only LV_XML_INACTIVE is",
                    (unsigned)flags);

    struct loaded ld;
    int32_t rc = find_domain(conn, name, call, &ld);
    if (rc != LV_OK)
        return rc;
    LvStr text = { (const uint8_t *)ld.xml, ld.len }; /* byte for byte, as it is on disk */
    conn->host->emit_text(call, text);
    free_loaded(&ld);
    return LV_OK;
}

static int32_t folder_domain_get_state(void *handle, LvStr name, uint32_t flags, LvCall *call)
{
    struct folder_conn *conn = handle;
    if (flags != 0)
        return fail(conn->host, call, LV_ERR_UNSUPPORTED,
                    "folder driver: state flags 0x%x are not supported; pass 0", (unsigned)flags);

    struct loaded ld;
    int32_t rc = find_domain(conn, name, call, &ld);
    if (rc != LV_OK)
        return rc;
    free_loaded(&ld);

    LvParam p[2];
    p[0] = param(LV_KEY_STATE, LV_PARAM_UINT);
    p[0].uint_value = LV_STATE_SHUTOFF;
    p[1] = param(LV_KEY_ID, LV_PARAM_INT);
    p[1].int_value = -1;
    conn->host->emit_record(call, p, sizeof p / sizeof p[0]);
    return LV_OK;
}

/* ---------------------------------------------------------------- entry point */

/* Everything this driver does not do stays NULL; the host tells the user it is unsupported. */
static const LvDriverVtable folder_vtable = {
    .struct_size = (uint32_t)sizeof(LvDriverVtable),
    .reserved = 0,
    .connect_open = folder_connect_open,
    .connect_close = folder_connect_close,
    .connect_list_domains = folder_list_domains,
    .domain_define_xml = NULL,
    .domain_undefine = NULL,
    .domain_get_xml = folder_domain_get_xml,
    .domain_get_state = folder_domain_get_state,
    .domain_create = NULL,
    .domain_destroy = NULL,
    .domain_get_block_info = NULL,
};

static const LvDriverInfo folder_info = {
    .struct_size = (uint32_t)sizeof(LvDriverInfo),
    .abi_major = LV_ABI_MAJOR,
    .abi_minor = LV_ABI_MINOR,
    .pointer_width = (uint16_t)sizeof(void *),
    .reserved16 = 0,
    .reserved32 = 0,
    .capabilities = LV_CAP_READ_ONLY,
    .name = LV_S("folder"),
    .version = LV_S("0.1.0"),
    .uri_schemes = LV_S("folder"),
    .description = LV_S("Read-only domains from a folder of libvirt domain XML files (example driver in C)"),
    .vtable = &folder_vtable,
};

EXPORTED const LvDriverInfo *luavirt_driver_entry_v1(void)
{
    return &folder_info;
}
