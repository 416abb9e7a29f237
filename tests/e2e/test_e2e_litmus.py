"""The litmus WebDAV compliance suite (RFC 4918) against the real daemon over HTTPS.

litmus runs the groups basic, copymove, props, locks and http as a client user,
against that user's root URL; it works in `/litmus/` below it. Its uploads are
stored with encryption at rest (there is no way to turn that off), which the last
test checks in the blob directory. Any failure, any warning, or any test that
ends in neither "pass" nor the one allowed skip fails the test.
"""
import re
import subprocess

import pytest

from tests.support.daemon import need

GROUPS = ("basic", "copymove", "props", "locks", "http")
LITMUS_TIMEOUT = 120
# http/expect100 opens a plain TCP socket to check for "100 Continue" and skips
# itself over TLS ("skipping for SSL server"): litmus cannot run it against an
# HTTPS-only server. litmus does not count a skipped test as run, so the summary
# still says "N of N passed". It is the only skip we accept, with exactly this
# reason; test_expect_100_continue_over_https checks the same behaviour with curl.
ALLOWED_SKIPS = {("http", "expect100", "SKIPPED (skipping for SSL server)")}
PROBLEM = re.compile(r"WARNING|FAIL|ERROR|warnings? (?:was|were) issued|with \d+ warning|"
                     r"See debug\.log")
RESULT = re.compile(r"^\s*\d+\.\s+(\S+?)\.*\s+(\S.*)$")
GROUP_START = re.compile(r"^-> running `([^']+)':$")
SUMMARY = re.compile(r"^<- summary for `([^']+)': of (\d+) tests run: "
                     r"(\d+) passed, (\d+) failed\.")


def parse_litmus(output: str):
    """(results, summaries, problems) from litmus's output.

    results: [(group, test, verdict)]; summaries: {group: (run, passed, failed)};
    problems: every line that says WARNING, FAIL or that litmus gave up.
    litmus rewrites each result line with '\\r' (progress, then verdict): the
    verdict is what follows the last '\\r'.
    """
    results, summaries, problems, group = [], {}, [], None
    for raw in output.splitlines():
        line = raw.rsplit("\r", 1)[-1].rstrip()
        if PROBLEM.search(line):
            problems.append(line)
        if m := GROUP_START.match(line):
            group = m.group(1)
        elif m := SUMMARY.match(line):
            summaries[m.group(1)] = tuple(int(n) for n in m.group(2, 3, 4))
        elif (m := RESULT.match(line)) and group is not None:
            results.append((group, m.group(1), m.group(2)))
    return results, summaries, problems


def run_litmus(daemon, user: str) -> subprocess.CompletedProcess:
    need("litmus")
    u = daemon.users[user]
    cwd = daemon.path("litmus")     # litmus writes debug.log and child.log here
    cwd.mkdir()
    proc = subprocess.run(["litmus", "-k", daemon.url("/"), u.login, u.password],
                          cwd=cwd, env={"PATH": "/usr/bin:/bin", "TESTS": " ".join(GROUPS),
                                        "LC_ALL": "C.UTF-8"},
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=LITMUS_TIMEOUT)
    proc.stdout = proc.stdout.decode("utf-8", "replace")
    proc.stderr = proc.stderr.decode("utf-8", "replace")
    debug = cwd / "debug.log"
    proc.debug_tail = debug.read_text("utf-8", "replace")[-4000:] if debug.exists() else ""
    return proc


@pytest.fixture(scope="module")
def litmus_run(daemon):
    """One litmus run per module: its daemon is fresh, so /litmus/ starts absent."""
    assert daemon.request("alice", "PROPFIND", "/litmus/", "-H", "Depth: 0").status == 404
    return run_litmus(daemon, "alice")


def test_litmus_passes_every_group_without_warnings(litmus_run):
    out = litmus_run.stdout + litmus_run.stderr
    context = f"litmus output:\n{out}\n--- debug.log (tail) ---\n{litmus_run.debug_tail}"
    results, summaries, problems = parse_litmus(out)

    assert not problems, "\n".join(problems) + "\n\n" + context
    not_passed = [r for r in results if r[2] != "pass" and r not in ALLOWED_SKIPS]
    assert not not_passed, f"{not_passed}\n\n{context}"
    assert set(summaries) == set(GROUPS), f"groups run: {sorted(summaries)}\n\n{context}"
    for group, (run, passed, failed) in summaries.items():
        assert run > 0 and passed == run and failed == 0, f"{group}: {run}/{passed}/{failed}"
    assert litmus_run.returncode == 0, context


def test_litmus_ran_the_expected_tests(litmus_run):
    """Guards the parser: a format change must not turn the check above into a no-op."""
    results, summaries, _ = parse_litmus(litmus_run.stdout)
    names = {(g, t) for g, t, _ in results}
    for expected in [("basic", "put_get_utf8_segment"), ("copymove", "move_coll"),
                     ("props", "prophighunicode"), ("locks", "unmapped_lock"),
                     ("locks", "cond_put_corrupt_token"), ("http", "expect100")]:
        assert expected in names, expected
    skipped = sum(1 for r in results if r[2] != "pass")
    assert sum(run for run, _, _ in summaries.values()) + skipped == len(results)


def test_expect_100_continue_over_https(daemon):
    """What litmus's expect100 would check: the server answers `Expect: 100-continue`
    with an interim 100 before it reads the body, then completes the PUT."""
    src = daemon.path("expect100.bin")
    src.write_bytes(b"x" * 200_000)
    proc = daemon.curl("alice", "-v", "-o", "/dev/null", "-w", "%{http_code}", "-T", src,
                       "-H", "Expect: 100-continue", daemon.url("/expect100.bin"))
    trace = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0 and proc.stdout == b"201", trace
    assert re.search(r"^< HTTP/1\.1 100 Continue", trace, re.M), trace


def test_litmus_uploads_are_encrypted_at_rest(daemon, litmus_run):
    """litmus's put_get uploads its htdocs/foo; no blob may hold that plaintext
    (current versions and the trash of its deletes alike)."""
    marker = b"test\nfile\ncalled\nfoo"
    blobs = [p for p in daemon.blob_dir.rglob("*") if p.is_file()]
    assert blobs, "litmus stored nothing?"
    assert not [p for p in blobs if marker in p.read_bytes()]
