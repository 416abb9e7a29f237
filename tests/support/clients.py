"""Running external clients from a test: bounded in time, output as text, and a
failure that shows what the client said."""
import subprocess

import pytest

from tests.support.daemon import need

CLIENT_TIMEOUT = 60        # seconds for any one client run


def run(argv, *, cwd=None, env=None, input=None, timeout=CLIENT_TIMEOUT):
    """Run a client; output as text. A client that hangs fails the test."""
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, input=input, capture_output=True,
                              timeout=timeout, stdin=None if input else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{argv[0]} did not finish within {timeout} s: {e.stderr!r}")
    proc.stdout, proc.stderr = (proc.stdout.decode("utf-8", "replace"),
                                proc.stderr.decode("utf-8", "replace"))
    return proc


def ok(proc):
    out = proc.stdout if isinstance(proc.stdout, str) else proc.stdout.decode("utf-8", "replace")
    err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, f"exited {proc.returncode}\nstdout:\n{out}\nstderr:\n{err}"
    return proc


def host_fingerprint(daemon) -> str:
    need("ssh-keygen")
    out = ok(run(["ssh-keygen", "-lf", str(daemon.data_dir / "ssh" / "ssh_host_ed25519_key.pub")]))
    return out.stdout.split()[1]          # "SHA256:..."
