"""Two versions made in the same second get two names in `@versions` (issue 18), on
SQLite and on PostgreSQL: a WebDAV PUT and an SFTP put of one file within one second
show as two entries (a Depth-1 PROPFIND and an SFTP listing agree), each opening to the
bytes of its own upload over both protocols: the name holds the version id, not only the
time (appliance.service.history)."""
import re
import xml.etree.ElementTree as ET
from urllib.parse import unquote, urlsplit

import paramiko
import pytest
import requests

from tests.support.daemon import HOST, Daemon, running_on

TRIES = 10          # rounds until both uploads fall in one second
SECOND = re.compile(r"^(\d{4}-\d\d-\d\d \d\d-\d\d-\d\d) v\d+ ")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def daemon(request, tmp_path_factory):
    """alice's daemon, on SQLite or on a PostgreSQL database of its own."""
    yield from running_on(request.param, tmp_path_factory, "version-names")


@pytest.fixture
def clients(daemon):
    """(requests session, paramiko SFTP client) of alice."""
    user = daemon.users["alice"]
    http = requests.Session()
    http.verify, http.trust_env, http.auth = False, False, (user.login, user.password)
    transport = paramiko.Transport((HOST, daemon.sftp_port))
    transport.connect(username=user.login, password=user.password)
    yield http, paramiko.SFTPClient.from_transport(transport)
    transport.close()
    http.close()


def second_of(version_name: str) -> str:
    m = SECOND.match(version_name)
    assert m, version_name
    return m.group(1)


def dav_names(daemon: Daemon, http: requests.Session, folder: str) -> list[str]:
    """The names a Depth-1 PROPFIND of `folder` lists below it."""
    r = http.request("PROPFIND", daemon.url(folder), headers={"Depth": "1"}, timeout=60)
    assert r.status_code == 207, r.status_code
    hrefs = [unquote(urlsplit(e.text or "").path).rstrip("/")
             for e in ET.fromstring(r.content).iter("{DAV:}href")]
    return sorted(h.rsplit("/", 1)[-1] for h in hrefs if h != folder.rstrip("/"))


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_two_versions_in_one_second_have_two_names(daemon, clients):
    http, sftp = clients
    for attempt in range(TRIES):
        name = f"same-second-{attempt}.txt"
        first, second = f"over webdav {attempt}".encode(), f"over sftp {attempt}".encode()
        assert http.put(daemon.url(f"/{name}"), data=first, timeout=60).status_code == 201
        with sftp.open(f"/{name}", "wb") as f:
            f.write(second)
        listed = sorted(sftp.listdir(f"/@versions/{name}"))
        if len({second_of(n) for n in listed}) == 1:
            break
    else:
        pytest.fail(f"no two uploads within one second in {TRIES} tries")
    assert len(listed) == 2 and listed == dav_names(daemon, http, f"/@versions/{name}")
    by_id = sorted(listed, key=lambda n: int(n.split(" v", 1)[1].split(" ", 1)[0]))
    for version, data in zip(by_id, (first, second)):
        path = f"/@versions/{name}/{version}"
        with sftp.open(path, "rb") as f:
            assert f.read() == data
        got = http.get(daemon.url(path), timeout=60)
        assert got.status_code == 200 and got.content == data, (path, got.status_code)
