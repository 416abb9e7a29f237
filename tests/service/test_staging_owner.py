"""The staging area is cleaned of what dead processes left, never of what a live
one writes: a daemon starting while a CLI command (or another daemon) uploads
keeps that upload; `doctor --repair` too, however old the file looks."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from strongroom.providers.local import LocalProvider

CHUNK = 64 * 1024
WRITER = textwrap.dedent("""
    import sys
    from strongroom.providers.local import LocalProvider
    store = LocalProvider(sys.argv[1], 64 * 1024)
    kind = sys.argv[2]
    if kind == "blob":
        w = store.create_blob(bytes(32), bytes(32))
        w.write(b"x" * 300_000)
    elif kind == "scratch":
        w = store.create_scratch()
        w.put(0, b"y" * 1000)
    else:   # an unpublished upload read back (random-access writes after streaming)
        w = store.create_blob(bytes(32), bytes(32))
        w.write(b"z" * 100_000)
        w = w.reopen_for_reading()
    print("ready", flush=True)
    sys.stdin.readline()
    if kind == "blob":
        print(w.commit(), flush=True)
    elif kind == "reread":
        print(len(w.read(0, 200_000)), flush=True)
    else:
        print("done", flush=True)
""")


def start_writer(blob_dir, kind: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(blob_dir), kind],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout.readline().strip() == "ready"
    return proc


def finish(proc) -> str:
    out, _ = proc.communicate("go\n", timeout=60)
    assert proc.returncode == 0
    return out.strip()


def age(blob_dir, seconds: float) -> None:
    for f in (blob_dir / ".staging").iterdir():
        os.utime(f, (time.time() - seconds, time.time() - seconds))


@pytest.mark.parametrize("kind", ["blob", "scratch", "reread"])
def test_a_live_writers_file_survives_cleaning(tmp_path, kind):
    blob_dir = tmp_path / "blobs"
    LocalProvider(blob_dir, CHUNK)
    proc = start_writer(blob_dir, kind)
    assert LocalProvider(blob_dir, CHUNK).clean_staging() == []
    assert len(list((blob_dir / ".staging").iterdir())) == 1
    out = finish(proc)
    if kind == "blob":
        store = LocalProvider(blob_dir, CHUNK)
        reader = store.open_blob(out, bytes(32), 300_000)
        assert reader.read(0, 300_000) == b"x" * 300_000
        reader.close()
    elif kind == "reread":
        assert out == "100000"


def test_a_dead_writers_file_is_removed(tmp_path):
    blob_dir = tmp_path / "blobs"
    LocalProvider(blob_dir, CHUNK)
    proc = start_writer(blob_dir, "blob")
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert len(LocalProvider(blob_dir, CHUNK).clean_staging()) == 1
    assert not list((blob_dir / ".staging").iterdir())


def test_doctor_repair_spares_an_old_looking_live_upload(app):
    blob_dir = app.provider.root
    proc = start_writer(blob_dir, "blob")
    age(blob_dir, 3600)
    report = app.admin().doctor(repair=True)
    assert report["removed"] == [] and len(report["staging_files"]) == 1
    published = finish(proc)    # published, and its process ended before a version named it
    proc = start_writer(blob_dir, "blob")
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    age(blob_dir, 3600)
    killed = {p.name for p in (blob_dir / ".staging").iterdir()} - {f"{published}.part"}
    report = app.admin().doctor(repair=True)
    assert sorted(report["removed"]) == sorted([*killed, published, f"{published}.part"])
    assert report["ok"] and report["stray_blobs"] == []
