"""A Depth-1 PROPFIND reads the dead properties of all members at once (issue 18: a
1,000-member folder took 3.5 s on SQLite, 10 s on PostgreSQL); it must answer exactly
what asking member by member answered: every member's own properties, and none of a
file the user may not read."""
import re

import requests
import urllib3

from tests.support.daemon import Daemon

urllib3.disable_warnings()
PATCH = ('<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x-test">'
         '<D:set><D:prop><Z:colour>{}</Z:colour></D:prop></D:set></D:propertyupdate>')
ALLPROP = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'


def dav(d: Daemon, login: str) -> requests.Session:
    s = requests.Session()
    s.verify, s.trust_env = False, False
    user = d.users[login]
    s.auth = (user.login, user.password)
    return s


def colours(s: requests.Session, url: str, depth: str) -> dict[str, str]:
    r = s.request("PROPFIND", url, data=ALLPROP, headers={"Depth": depth})
    assert r.status_code == 207, r.status_code
    out = {}
    for response in re.findall(r"<(?:\w+:)?response\b.*?</(?:\w+:)?response>", r.text, re.S):
        href = re.search(r"<(?:\w+:)?href>([^<]+)<", response).group(1)
        colour = re.search(r"<(?:\w+:)?colour[^>]*>([^<]*)<", response)
        if colour:
            out[href.rstrip("/").rsplit("/", 1)[-1]] = colour.group(1)
    return out


def test_a_listing_shows_each_members_properties_as_asking_one_by_one(daemon):
    alice = dav(daemon, "alice")
    base = daemon.base_url
    assert alice.request("MKCOL", f"{base}/paint").status_code == 201
    for i, colour in enumerate(("red", "green", "blue")):
        assert alice.put(f"{base}/paint/f{i}.txt", data=b"x").status_code == 201
        assert alice.request("PROPPATCH", f"{base}/paint/f{i}.txt",
                             data=PATCH.format(colour)).status_code == 207
    assert alice.request("MKCOL", f"{base}/paint/sub").status_code == 201
    assert alice.request("PROPPATCH", f"{base}/paint/sub",
                         data=PATCH.format("grey")).status_code == 207
    listed = colours(alice, f"{base}/paint/", "1")
    one_by_one = {}
    for name in ("f0.txt", "f1.txt", "f2.txt", "sub"):
        one_by_one.update(colours(alice, f"{base}/paint/{name}", "0"))
    assert listed == one_by_one == {"f0.txt": "red", "f1.txt": "green", "f2.txt": "blue",
                                    "sub": "grey"}
    # a deleted file keeps its properties in the trash (not listed from the live folder)
    assert alice.delete(f"{base}/paint/f0.txt").status_code == 204
    assert "f0.txt" not in colours(alice, f"{base}/paint/", "1")
    trash = colours(alice, f"{base}/@trash/paint/", "1")
    assert list(trash.values()) == ["red"]
    # staff see the same properties in the client's folder
    staff = colours(dav(daemon, "staff"), f"{base}/acme/paint/", "1")
    assert staff == {"f1.txt": "green", "f2.txt": "blue", "sub": "grey"}
