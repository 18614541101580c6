/*
 * harness.c: a tiny stand-in for the luavirt host, to try a driver .so without it.
 *
 *   cc -std=c11 -Wall -Werror -I../../plugin-api/include harness.c -ldl -o /tmp/harness
 *   /tmp/harness ./libluavirt_folder.so /path/to/folder NAME
 *
 * It checks the driver's info, opens folder:///path (and a few bad URIs), lists the
 * domains, asks for the XML and state of NAME and of a name that does not exist, and
 * prints everything the driver hands back. Exit status 0 when every call returned
 * what was expected.
 */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luavirt_driver.h"

/* The host's call context is opaque to drivers; here it only names the call. */
struct LvCall {
    const char *what;
    int32_t error_code;
};

static int failures;

static void print_str(LvStr s)
{
    if (s.len != 0)
        fwrite(s.ptr, 1, s.len, stdout);
}

static void h_emit_text(LvCall *call, LvStr text)
{
    printf("  [%s] text (%zu bytes):\n", call->what, text.len);
    print_str(text);
    if (text.len == 0 || text.ptr[text.len - 1] != '\n')
        printf("\n");
}

static void h_emit_record(LvCall *call, const LvParam *params, size_t count)
{
    printf("  [%s] record:", call->what);
    for (size_t i = 0; i < count; i++) {
        const LvParam *p = &params[i];
        printf(" ");
        print_str(p->key);
        printf("=");
        switch (p->kind) {
        case LV_PARAM_INT: printf("%" PRId64, p->int_value); break;
        case LV_PARAM_UINT: printf("%" PRIu64 "u", p->uint_value); break;
        case LV_PARAM_DOUBLE: printf("%g", p->double_value); break;
        case LV_PARAM_BOOL: printf("%s", p->int_value ? "true" : "false"); break;
        case LV_PARAM_STRING: printf("\""); print_str(p->string_value); printf("\""); break;
        default: printf("<kind %u?>", (unsigned)p->kind); failures++; break;
        }
        if (p->reserved != 0) {
            printf("<reserved not zero>");
            failures++;
        }
    }
    printf("\n");
}

static void h_set_error(LvCall *call, int32_t code, LvStr message)
{
    printf("  [%s] error %d: ", call->what, (int)code);
    print_str(message);
    printf("\n");
    call->error_code = code;
}

static void h_progress(LvCall *call, uint64_t done, uint64_t total, LvStr stage)
{
    printf("  [%s] progress %" PRIu64 "/%" PRIu64 " ", call->what, done, total);
    print_str(stage);
    printf("\n");
}

static bool h_is_cancelled(LvCall *call)
{
    (void)call;
    return false;
}

static void h_log(LvCall *call, int32_t level, LvStr message)
{
    printf("  [%s] log level %d: ", call != NULL ? call->what : "-", (int)level);
    print_str(message);
    printf("\n");
}

static const LvHostApi host_api = {
    .struct_size = sizeof(LvHostApi),
    .abi_major = LV_ABI_MAJOR,
    .abi_minor = LV_ABI_MINOR,
    .emit_text = h_emit_text,
    .emit_record = h_emit_record,
    .set_error = h_set_error,
    .progress = h_progress,
    .is_cancelled = h_is_cancelled,
    .log = h_log,
};

static LvStr str(const char *s)
{
    LvStr r = { (const uint8_t *)s, strlen(s) };
    return r;
}

/* The driver must return `want`, and must have called set_error with the same code when failing. */
static void expect(const char *what, int32_t got, int32_t want, const LvCall *call)
{
    bool ok = got == want && (got == LV_OK ? call->error_code == 0 : call->error_code == got);
    printf("%s -> %d (%s)\n\n", what, (int)got, ok ? "as expected" : "UNEXPECTED");
    if (!ok)
        failures++;
}

static int32_t try_open(const LvDriverVtable *vt, const char *uri, int32_t want, void **conn)
{
    LvCall call = { "connect_open", 0 };
    printf("connect_open %s\n", uri);
    /* Hand over a copy with a stray byte after it: the driver must honour len, not look for a NUL. */
    size_t n = strlen(uri);
    char *copy = malloc(n + 1);
    if (copy == NULL) {
        perror("malloc");
        exit(2);
    }
    memcpy(copy, uri, n);
    copy[n] = 'X';
    LvStr s = { (const uint8_t *)copy, n };
    int32_t rc = vt->connect_open(&host_api, s, 0, conn, &call);
    free(copy);
    expect("connect_open", rc, want, &call);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s DRIVER.so FOLDER NAME\n", argv[0]);
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 2;
    }
    /* memcpy, because ISO C has no cast from void * to a function pointer. */
    void *sym = dlsym(lib, "luavirt_driver_entry_v1");
    if (sym == NULL) {
        fprintf(stderr, "dlsym: %s\n", dlerror());
        return 2;
    }
    LvDriverEntryFn entry;
    memcpy(&entry, &sym, sizeof entry);

    const LvDriverInfo *info = entry();
    printf("driver ");
    print_str(info->name);
    printf(" ");
    print_str(info->version);
    printf(", schemes ");
    print_str(info->uri_schemes);
    printf(", caps 0x%" PRIx64 ", ABI %u.%u, pointer width %u\n  ", info->capabilities,
           (unsigned)info->abi_major, (unsigned)info->abi_minor, (unsigned)info->pointer_width);
    print_str(info->description);
    printf("\n\n");
    if (info->struct_size != sizeof(LvDriverInfo) || info->abi_major != LV_ABI_MAJOR ||
        info->pointer_width != sizeof(void *) || info->vtable == NULL ||
        info->vtable->struct_size != sizeof(LvDriverVtable)) {
        fprintf(stderr, "driver info does not match this header\n");
        return 1;
    }
    const LvDriverVtable *vt = info->vtable;

    void *conn = NULL;
    char uri[4096];

    /* URIs the driver must refuse. */
    try_open(vt, "folder:///nonexistent/luavirt-folder", LV_ERR_INVALID_URI, &conn);
    try_open(vt, "folder://somehost/tmp", LV_ERR_INVALID_URI, &conn);
    try_open(vt, "qemu:///session", LV_ERR_INVALID_URI, &conn);
    try_open(vt, "folder:///tmp/%zz", LV_ERR_INVALID_URI, &conn);
    try_open(vt, "folder:///dev/null", LV_ERR_INVALID_URI, &conn);
    try_open(vt, "folder:", LV_ERR_INVALID_URI, &conn);

    /* The real one, with a query that the driver ignores. */
    snprintf(uri, sizeof uri, "folder://%s/?mode=test", argv[2]);
    if (try_open(vt, uri, LV_OK, &conn) != LV_OK)
        return 1;

    printf("unsupported: define=%s undefine=%s create=%s destroy=%s block_info=%s\n\n",
           vt->domain_define_xml ? "set" : "NULL", vt->domain_undefine ? "set" : "NULL",
           vt->domain_create ? "set" : "NULL", vt->domain_destroy ? "set" : "NULL",
           vt->domain_get_block_info ? "set" : "NULL");

    LvCall call = { "list", 0 };
    printf("connect_list_domains\n");
    expect("connect_list_domains", vt->connect_list_domains(conn, 0, &call), LV_OK, &call);

    call = (LvCall){ "dumpxml", 0 };
    printf("domain_get_xml %s\n", argv[3]);
    expect("domain_get_xml", vt->domain_get_xml(conn, str(argv[3]), LV_XML_INACTIVE, &call), LV_OK, &call);

    call = (LvCall){ "state", 0 };
    printf("domain_get_state %s\n", argv[3]);
    expect("domain_get_state", vt->domain_get_state(conn, str(argv[3]), 0, &call), LV_OK, &call);

    call = (LvCall){ "dumpxml", 0 };
    printf("domain_get_xml no-such-domain\n");
    expect("domain_get_xml", vt->domain_get_xml(conn, str("no-such-domain"), 0, &call), LV_ERR_NO_DOMAIN, &call);

    call = (LvCall){ "state", 0 };
    printf("domain_get_state no-such-domain\n");
    expect("domain_get_state", vt->domain_get_state(conn, str("no-such-domain"), 0, &call), LV_ERR_NO_DOMAIN,
           &call);

    call = (LvCall){ "dumpxml", 0 };
    printf("domain_get_xml %s with flags 0x80\n", argv[3]);
    expect("domain_get_xml", vt->domain_get_xml(conn, str(argv[3]), 0x80, &call), LV_ERR_UNSUPPORTED, &call);

    printf("connect_close\n");
    vt->connect_close(conn);

    if (dlclose(lib) != 0) {
        fprintf(stderr, "dlclose: %s\n", dlerror());
        return 1;
    }
    printf("\n%d unexpected result(s)\n", failures);
    return failures == 0 ? 0 : 1;
}
