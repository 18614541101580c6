/* A driver that does not fit the host, built by the tests with one of:
 *   -DMISFIT_MAJOR      built for ABI major 2
 *   -DMISFIT_POINTERS   claims 4-byte pointers
 *   -DMISFIT_SIZE       an LvDriverInfo too small to hold the ABI 1 fields
 *   -DMISFIT_NO_ENTRY   exports no entry point at all
 * The host must refuse each with a reason that names the mismatch. With
 *   -DMISFIT_OLD_MINOR  built for ABI 1.0: a vtable that ends before the 1.1 functions
 * it loads, and the 1.1 functions read as unsupported. */
#include <stddef.h>
#include "luavirt_driver.h"

#define S(lit) { (const uint8_t *)(lit), sizeof(lit) - 1 }

static int32_t open_conn(const LvHostApi *host, LvStr uri, uint32_t flags, void **conn, LvCall *call)
{
    (void)host; (void)uri; (void)flags; (void)call;
    *conn = (void *)1;
    return LV_OK;
}

static void close_conn(void *conn) { (void)conn; }

static const LvDriverVtable vtable = {
#ifdef MISFIT_OLD_MINOR
    .struct_size = offsetof(LvDriverVtable, domain_snapshot_create),
    /* A 1.0 driver has no 1.1 fields; garbage here must not be called. */
    .domain_snapshot_list = (LvDomainOpFn)1,
#else
    .struct_size = sizeof(LvDriverVtable),
#endif
    .connect_open = open_conn,
    .connect_close = close_conn,
};

static const LvDriverInfo info = {
#ifdef MISFIT_SIZE
    .struct_size = 8,
#else
    .struct_size = sizeof(LvDriverInfo),
#endif
#ifdef MISFIT_MAJOR
    .abi_major = 2,
#else
    .abi_major = LV_ABI_MAJOR,
#endif
    .abi_minor = 0, /* older than the host's; the host accepts any minor of its major */
#ifdef MISFIT_POINTERS
    .pointer_width = 4,
#else
    .pointer_width = sizeof(void *),
#endif
    .name = S("misfit"),
    .version = S("0"),
    .uri_schemes = S("misfit"),
    .description = S("a driver that does not fit"),
    .vtable = &vtable,
};

#ifndef MISFIT_NO_ENTRY
const LvDriverInfo *luavirt_driver_entry_v1(void) { return &info; }
#else
const LvDriverInfo *some_other_function(void) { return &info; }
#endif
