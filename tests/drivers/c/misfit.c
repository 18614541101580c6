/* A driver that does not fit the host, built by the tests with one of:
 *   -DMISFIT_MAJOR        built for ABI major 2
 *   -DMISFIT_POINTERS     claims 4-byte pointers
 *   -DMISFIT_SIZE         an LvDriverInfo too small to hold the ABI 1 fields
 *   -DMISFIT_NO_ENTRY     exports no entry point at all
 * or an entry point that answers with garbage, which must not crash the host:
 *   -DMISFIT_NULL_INFO    returns NULL
 *   -DMISFIT_WILD_INFO    returns a pointer to nothing
 *   -DMISFIT_HEAP_INFO    returns an LvDriverInfo on the heap, not static data
 *   -DMISFIT_TINY_INFO    an LvDriverInfo of 4 bytes
 *   -DMISFIT_NULL_VTABLE  no vtable
 *   -DMISFIT_WILD_VTABLE  a vtable pointer to nothing
 *   -DMISFIT_TINY_VTABLE  a vtable of 4 bytes
 *   -DMISFIT_NO_OPEN      no connect_open;  -DMISFIT_NO_CLOSE  no connect_close
 *   -DMISFIT_WILD_FUNCTION  connect_list_domains pointing at no code
 *   -DMISFIT_WILD_NAME    a name pointing at nothing
 * The host must refuse each with a reason that names the mismatch. With
 *   -DMISFIT_OLD_MINOR    built for ABI 1.0: a vtable that ends before the 1.1 functions
 *   -DMISFIT_NEW_MINOR    built for a minor newer than the host's, with a function it does not know
 *   -DMISFIT_LAX_FLAGS    lists domains whatever flags it is given (the contract says refuse)
 * it loads, and the 1.1 functions read as unsupported. With
 *   -DMISFIT_CONSTRUCTOR  its constructor creates the file named by $MISFIT_MARKER, to show
 *                         whether the host let its code run. */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "luavirt_driver.h"

#define S(lit) { (const uint8_t *)(lit), sizeof(lit) - 1 }
#define WILD(type) ((type)(uintptr_t)0x10)

#ifdef MISFIT_CONSTRUCTOR
__attribute__((constructor)) static void ran(void)
{
    const char *marker = getenv("MISFIT_MARKER");
    if (marker) {
        int fd = open(marker, O_WRONLY | O_CREAT, 0600);
        if (fd >= 0)
            close(fd);
    }
}
#endif

__attribute__((unused)) static int32_t open_conn(const LvHostApi *host, LvStr uri, uint32_t flags, void **conn, LvCall *call)
{
    (void)host; (void)uri; (void)flags; (void)call;
    *conn = (void *)1;
    return LV_OK;
}

__attribute__((unused)) static void close_conn(void *conn) { (void)conn; }

__attribute__((unused)) static void close_later(void) {}

__attribute__((unused)) static int32_t lax_list(void *conn, uint32_t flags, LvCall *call)
{
    (void)conn; (void)flags; (void)call;
    return LV_OK;
}

/* unused in the variants that return something else */
__attribute__((unused)) static const LvDriverVtable vtable = {
#ifdef MISFIT_OLD_MINOR
    .struct_size = offsetof(LvDriverVtable, domain_snapshot_create),
    /* A 1.0 driver has no 1.1 fields; garbage here must not be called. */
    .domain_snapshot_list = (LvDomainOpFn)1,
#elif defined(MISFIT_TINY_VTABLE)
    .struct_size = 4,
#else
    .struct_size = sizeof(LvDriverVtable),
#endif
#ifndef MISFIT_NO_OPEN
    .connect_open = open_conn,
#endif
#ifndef MISFIT_NO_CLOSE
    .connect_close = close_conn,
#endif
#ifdef MISFIT_WILD_FUNCTION
    .connect_list_domains = WILD(LvConnectOpFn),
#endif
#ifdef MISFIT_LAX_FLAGS
    .connect_list_domains = lax_list,
#endif
};

#ifdef MISFIT_NEW_MINOR
/* A newer minor's vtable: the known functions, then one appended later. */
static const struct {
    LvDriverVtable known;
    void (*later)(void);
} newer = {
    .known = {
        .struct_size = sizeof(LvDriverVtable) + sizeof(void (*)(void)),
        .connect_open = open_conn,
        .connect_close = close_conn,
    },
    .later = close_later,
};
#endif

__attribute__((unused)) static const LvDriverInfo info = {
#ifdef MISFIT_SIZE
    .struct_size = 8,
#elif defined(MISFIT_TINY_INFO)
    .struct_size = 4,
#else
    .struct_size = sizeof(LvDriverInfo),
#endif
#ifdef MISFIT_MAJOR
    .abi_major = 2,
#else
    .abi_major = LV_ABI_MAJOR,
#endif
#ifdef MISFIT_NEW_MINOR
    .abi_minor = LV_ABI_MINOR + 1,
#else
    .abi_minor = 0, /* older than the host's; the host accepts any minor of its major */
#endif
#ifdef MISFIT_POINTERS
    .pointer_width = 4,
#else
    .pointer_width = sizeof(void *),
#endif
#ifdef MISFIT_WILD_NAME
    .name = { WILD(const uint8_t *), 6 },
#else
    .name = S("misfit"),
#endif
    .version = S("0"),
    .uri_schemes = S("misfit"),
    .description = S("a driver that does not fit"),
#ifdef MISFIT_NULL_VTABLE
    .vtable = NULL,
#elif defined(MISFIT_WILD_VTABLE)
    .vtable = WILD(const LvDriverVtable *),
#elif defined(MISFIT_NEW_MINOR)
    .vtable = &newer.known,
#else
    .vtable = &vtable,
#endif
};

#ifndef MISFIT_NO_ENTRY
const LvDriverInfo *luavirt_driver_entry_v1(void)
{
#if defined(MISFIT_NULL_INFO)
    return NULL;
#elif defined(MISFIT_WILD_INFO)
    return WILD(const LvDriverInfo *);
#elif defined(MISFIT_HEAP_INFO)
    LvDriverInfo *copy = malloc(sizeof info);
    if (copy)
        memcpy(copy, &info, sizeof info);
    return copy;
#else
    return &info;
#endif
}
#else
const LvDriverInfo *some_other_function(void) { return &info; }
#endif
