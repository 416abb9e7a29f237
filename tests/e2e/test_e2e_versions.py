"""The @versions view with real clients: OpenSSH sftp lists and downloads earlier
versions, rclone (WebDAV) downloads one, a WebDAV COPY (curl) of it over the file
restores it as a new version; the view refuses writes over both protocols."""
import json
import os

from tests.support.daemon import sftp_lines, sftp_quote as q


def test_browse_download_and_restore_through_the_view(daemon):
    contents = [os.urandom(5000 + i) for i in range(3)]
    assert daemon.run_sftp("alice", ["mkdir /hist"]).returncode == 0
    for i, data in enumerate(contents):
        local = daemon.path(f"v{i}.bin")
        local.write_bytes(data)
        assert daemon.run_sftp("alice", [f"put {q(local)} {q('/hist/Bericht März.bin')}"]) \
            .returncode == 0
    listing = daemon.run_sftp("alice", [f"ls -1 {q('/@versions/hist/Bericht März.bin')}"])
    assert listing.returncode == 0, listing.stderr
    names = [line.rsplit("/", 1)[-1] for line in sftp_lines(listing)]
    assert len(names) == 3 and all(n.endswith(" Bericht März.bin") for n in names), names
    first = f"/@versions/hist/Bericht März.bin/{names[0]}"
    down = daemon.path("first.bin")
    assert daemon.run_sftp("alice", [f"get {q(first)} {q(down)}"]).returncode == 0
    assert down.read_bytes() == contents[0]
    via_rclone = daemon.path("first-rclone.bin")
    r = daemon.rclone("alice", "copyto", daemon.remote("alice", first), via_rclone)
    assert r.returncode == 0 and via_rclone.read_bytes() == contents[0], r.stderr
    # restore: a server-side WebDAV COPY of the old version over the file
    r = daemon.request("alice", "COPY", first, "-H", "Overwrite: T", "-H",
                       "Destination: " + daemon.url("/hist/Bericht März.bin"))
    assert r.status == 204, r.body
    back = daemon.path("restored.bin")
    assert daemon.run_sftp("alice", [f"get {q('/hist/Bericht März.bin')} {q(back)}"]) \
        .returncode == 0
    assert back.read_bytes() == contents[0]
    rows = json.loads(daemon.cli("versions", "list", "/acme/hist/Bericht März.bin",
                                 "--json", check=True).stdout)
    # the same content under the same client key: the same keyed digest
    assert len(rows) == 4 and rows[-1]["current"] and rows[-1]["digest"] == rows[0]["digest"]
    assert len({r["digest"] for r in rows}) == 3


def test_the_view_refuses_writes_over_both_protocols(daemon):
    local = daemon.path("x.bin")
    local.write_bytes(b"x")
    assert daemon.run_sftp("alice", [f"put {q(local)} /@versions/x.bin"]).returncode != 0
    assert daemon.run_sftp("alice", ["mkdir /@versions/new"]).returncode != 0
    assert daemon.request("alice", "PUT", "/@versions/x.bin", "--data-binary", "x").status == 403
    assert daemon.request("alice", "DELETE", "/@versions").status == 403


def test_a_deleted_file_comes_back_from_the_trash(daemon):
    data = os.urandom(70000)
    local = daemon.path("rechnung.pdf")
    local.write_bytes(data)
    assert daemon.run_sftp("alice", ["mkdir /case", f"put {q(local)} {q('/case/Rechnung 3.pdf')}"]
                           ).returncode == 0
    assert daemon.request("alice", "DELETE", "/case/Rechnung 3.pdf").status == 204
    listing = daemon.run_sftp("alice", ["ls -1 /@trash/case"])
    assert listing.returncode == 0, listing.stderr
    (item,) = [line.rsplit("/", 1)[-1] for line in sftp_lines(listing)]
    assert item.endswith(" Rechnung 3.pdf"), item
    down = daemon.path("from-trash.pdf")
    assert daemon.run_sftp("alice", [f"get {q('/@trash/case/' + item)} {q(down)}"]) \
        .returncode == 0
    assert down.read_bytes() == data
    r = daemon.rclone("alice", "lsf", daemon.remote("alice", "/@trash/case"))
    assert r.returncode == 0 and r.stdout.split("\n")[0] == item, r.stderr
    # the view refuses changes over both protocols
    assert daemon.run_sftp("alice", [f"rm {q('/@trash/case/' + item)}"]).returncode != 0
    assert daemon.request("alice", "DELETE", f"/@trash/case/{item}").status == 403
    # restore: a WebDAV COPY out of the trash
    r = daemon.request("alice", "COPY", f"/@trash/case/{item}",
                       "-H", "Destination: " + daemon.url("/case/Rechnung 3.pdf"))
    assert r.status == 201, r.body
    back = daemon.path("restored.pdf")
    assert daemon.run_sftp("alice", [f"get {q('/case/Rechnung 3.pdf')} {q(back)}"]) \
        .returncode == 0
    assert back.read_bytes() == data

    # the admin's view of the same: list, then restore to where it was
    assert daemon.run_sftp("alice", [f"rm {q('/case/Rechnung 3.pdf')}"]).returncode == 0
    rows = json.loads(daemon.cli("trash", "list", "/acme", "--json", check=True).stdout)
    mine = [r for r in rows if r["original"] == "/acme/case/Rechnung 3.pdf"]
    assert len(mine) == 2 and not mine[0]["folder"] and mine[0]["size"] == len(data), rows
    assert mine[0]["item"] == f"/acme/@trash/case/{item}"
    r = daemon.cli("trash", "restore", mine[1]["id"], check=True)
    assert "restored" in r.stdout
    again = daemon.path("restored-by-cli.pdf")
    assert daemon.run_sftp("alice", [f"get {q('/case/Rechnung 3.pdf')} {q(again)}"]) \
        .returncode == 0
    assert again.read_bytes() == data
    # and the audit trail says who deleted it, over which protocol, and what was refused
    events = json.loads(daemon.cli("audit", "list", "--user", "alice", "--action", "delete",
                                   "--client", "acme", "--json", check=True).stdout)
    done = {(e["protocol"], e["path"]) for e in events if e["outcome"] == "ok"}
    assert {("webdav", "/acme/case/Rechnung 3.pdf"), ("sftp", "/acme/case/Rechnung 3.pdf")} \
        <= done, events
    refused = {e["protocol"] for e in events if e["outcome"] == "denied"}
    assert refused == {"sftp", "webdav"}, events
