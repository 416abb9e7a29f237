#!/usr/bin/env python3
"""Run `strongroom` with experimental monkeypatches, to measure a fix before making it.

    python bench/sftp_patches.py PATCH[,PATCH...] serve [--data-dir DIR]

bench/sftp.py uses this for `--patch`. The patches change only this process; the
application code is untouched. Add a candidate fix found by profiling as a
function here, measure it, then make it in appliance/ and drop it from here.

window4m  a 4 MiB channel window instead of 32 MiB (less buffered per session).

The earlier candidates (pipe, readbuf, gcm) are now part of appliance/sftp
(channelio.ChunkPipe, framing.Framing, server.CIPHERS); commits before 6cec0f6
carry their own copy of this file to measure them.
"""
import sys


def patch_window4m():
    import strongroom.appliance.sftp.server as server
    server.WINDOW = 4 * 1024 * 1024


PATCHES = {"window4m": patch_window4m}


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    names = [n for n in sys.argv[1].split(",") if n]
    for name in names:
        if name not in PATCHES:
            raise SystemExit(f"unknown patch {name!r}; known: {', '.join(PATCHES)}")
        PATCHES[name]()
    sys.argv = ["strongroom", *sys.argv[2:]]
    from strongroom.appliance.cli import main as cli
    cli()


if __name__ == "__main__":
    main()
