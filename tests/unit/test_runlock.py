"""The lock file's facts as `status` and a second `serve` read them: whatever a hand
edit left in the file, the answer is the facts of the right types, never a crash."""
import fcntl
import json
import os

import pytest

from strongroom.appliance.runlock import NAME, AlreadyServing, RunLock, holder


def held_with(data_dir, content: bytes) -> int:
    fd = os.open(data_dir / NAME, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.ftruncate(fd, 0)
    os.pwrite(fd, content, 0)
    return fd


@pytest.mark.parametrize("content, facts", [
    (b"[1]", {}), (b"null", {}), (b"garbage", {}), (b"", {}),
    (b'{"pid": "x", "started_at": "y"}', {}),
    (b'{"pid": 42, "started_at": 1.5, "other": 1}', {"pid": 42, "started_at": 1.5}),
])
def test_holder_keeps_only_facts_of_the_right_types(tmp_path, content, facts):
    fd = held_with(tmp_path, content)
    try:
        assert holder(tmp_path) == facts
    finally:
        os.close(fd)
    assert holder(tmp_path) is None


def test_a_second_lock_names_the_pid_or_says_it_is_locked(tmp_path):
    first = RunLock(tmp_path).acquire("1.0")
    with pytest.raises(AlreadyServing, match=f"PID {os.getpid()}"):
        RunLock(tmp_path).acquire("1.0")
    first.release()
    assert holder(tmp_path) is None
    fd = held_with(tmp_path, b"[1]")
    try:
        with pytest.raises(AlreadyServing, match="locked by another process"):
            RunLock(tmp_path).acquire("1.0")
    finally:
        os.close(fd)
    assert json.loads((tmp_path / NAME).read_text() or "[]") == [1]
