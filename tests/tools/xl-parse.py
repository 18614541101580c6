#!/usr/bin/env python3
"""Reads xl configs with Xen's own parser (libxlutil, from xen-utils) and prints, for each
file given, one JSON line: whether xl accepts the file (rc 0), the values of the settings
named with --key, and each disk spec of `disk` as libxl reads it (libxl_device_disk_to_json)
or the error code xlu_disk_parse returns. No Xen hypervisor is needed: these calls only parse.

    xl-parse.py [--key NAME]... FILE...
"""

import ctypes
import json
import sys


def load():
    try:
        return ctypes.CDLL("libxlutil.so.4.17"), ctypes.CDLL("libxenlight.so.4.17")
    except OSError as e:
        sys.exit(f"xl-parse.py: Xen's libraries are not installed ({e}); run tools/setup.sh (xen-utils-4.17)")


xlu, xl = load()
libc = ctypes.CDLL(None)
P, S = ctypes.c_void_p, ctypes.c_char_p
xlu.xlu_cfg_init.restype = P
xlu.xlu_cfg_init.argtypes = [P, S]
xlu.xlu_cfg_readdata.argtypes = [P, S, ctypes.c_int]
xlu.xlu_cfg_destroy.argtypes = [P]
xlu.xlu_cfg_get_string.argtypes = [P, S, ctypes.POINTER(S), ctypes.c_int]
xlu.xlu_cfg_get_list.argtypes = [P, S, ctypes.POINTER(P), ctypes.POINTER(ctypes.c_int), ctypes.c_int]
xlu.xlu_cfg_get_listitem.restype = S
xlu.xlu_cfg_get_listitem.argtypes = [P, ctypes.c_int]
xlu.xlu_disk_parse.argtypes = [P, ctypes.c_int, ctypes.POINTER(S), P]
xl.libxl_device_disk_init.argtypes = [P]
xl.libxl_device_disk_to_json.restype = S
xl.libxl_device_disk_to_json.argtypes = [P, P]
libc.fopen.restype = P
libc.fopen.argtypes = [S, S]


def parse(path, keys):
    data = open(path, "rb").read()
    cfg = xlu.xlu_cfg_init(libc.fopen(b"/dev/null", b"w"), path.encode())
    out = {"file": path, "rc": xlu.xlu_cfg_readdata(cfg, data, len(data))}
    if out["rc"] != 0:
        return out
    for k in keys:
        v = S()
        if xlu.xlu_cfg_get_string(cfg, k.encode(), ctypes.byref(v), 1) == 0:
            out[k] = v.value.decode("utf-8", "replace")
    lst, n = P(), ctypes.c_int()
    disks = []
    if xlu.xlu_cfg_get_list(cfg, b"disk", ctypes.byref(lst), ctypes.byref(n), 1) == 0:
        for i in range(n.value):
            spec = xlu.xlu_cfg_get_listitem(lst, i)
            # libxl_device_disk is well under 4 KiB; the buffer is only passed through.
            disk = ctypes.create_string_buffer(4096)
            xl.libxl_device_disk_init(disk)
            rc = xlu.xlu_disk_parse(cfg, 1, (S * 1)(spec), disk)
            if rc:
                disks.append({"spec": spec.decode(), "rc": rc})
            else:
                disks.append({"spec": spec.decode(), "disk": json.loads(xl.libxl_device_disk_to_json(None, disk))})
    out["disks"] = disks
    return out


def main():
    args, keys = sys.argv[1:], []
    while args and args[0] == "--key":
        keys.append(args[1])
        args = args[2:]
    for path in args:
        print(json.dumps(parse(path, keys)))


main()
