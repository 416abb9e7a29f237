"""The portal's pure pieces, by tables: which requests are a browser's, Range headers,
download file names, and the folder zip written to a stream that cannot seek."""
import io
import zipfile

import pytest

from strongroom.appliance.web.front import prefers_html
from strongroom.appliance.web.http import content_disposition
from strongroom.appliance.web.transfer_pages import _range, _Sink

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


@pytest.mark.parametrize("accept, html", [
    (BROWSER, True),
    ("text/html", True),
    ("", False),                                   # curl, rclone, davfs2: no Accept
    ("*/*", False),                                # curl's default
    ("application/xml", False),
    ("text/html;q=0.1, application/xml", False),   # html wanted less than something else
    ("text/html;q=0", False),
    ("text/html;q=bogus", False),
])
def test_only_a_request_preferring_html_is_a_browser(accept, html):
    assert prefers_html(accept) is html


@pytest.mark.parametrize("header, size, span", [
    ("bytes=0-99", 1000, (0, 100)),
    ("bytes=100-", 1000, (100, 1000)),
    ("bytes=-100", 1000, (900, 1000)),
    ("bytes=-5000", 1000, (0, 1000)),               # a suffix longer than the file: all of it
    ("bytes=990-5000", 1000, (990, 1000)),          # an end past the file is cut to it
    ("bytes=1000-", 1000, None),                    # starts past the end: 416
    ("bytes=500-400", 1000, (0, 1000)),             # last before first: not a range, ignored
    ("bytes=0-0,5-9", 1000, (0, 1000)),             # several ranges: the whole file
    ("items=0-9", 1000, (0, 1000)),                 # another unit: ignored
    ("bytes=abc-9", 1000, (0, 1000)),
    ("bytes=-", 1000, (0, 1000)),
    ("bytes=0-", 0, None),                          # nothing satisfies a range of an empty file
])
def test_range_headers(header, size, span):
    assert _range(header, size) == span


@pytest.mark.parametrize("name, fallback, encoded", [
    ("report.pdf", "report.pdf", "report.pdf"),
    ("Rechnung März.pdf", "Rechnung M_rz.pdf", "Rechnung%20M%C3%A4rz.pdf"),
    ('a "quoted" name.txt', "a _quoted_ name.txt", "a%20%22quoted%22%20name.txt"),
    ("דוח.pdf", "___.pdf", "%D7%93%D7%95%D7%97.pdf"),
    ("new\r\nline.txt", "new__line.txt", "new%0D%0Aline.txt"),
])
def test_download_names_follow_rfc_6266_and_5987(name, fallback, encoded):
    value = content_disposition(name)
    assert value == f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    assert "\r" not in value and "\n" not in value


def test_a_zip_written_without_seeking_reads_back():
    sink, out = _Sink(), bytearray()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        with zf.open(zipfile.ZipInfo("dir/Årsredovisning.txt"), "w", force_zip64=True) as f:
            f.write(b"x" * 100_000)
            out += b"".join(sink.drain())
        zf.writestr(zipfile.ZipInfo("empty/"), b"")
    out += b"".join(sink.drain())
    with zipfile.ZipFile(io.BytesIO(bytes(out))) as back:
        assert back.namelist() == ["dir/Årsredovisning.txt", "empty/"]
        assert back.read("dir/Årsredovisning.txt") == b"x" * 100_000
        assert back.testzip() is None


@pytest.mark.parametrize("lang", ["sv", "he"])
def test_every_domain_error_is_explained_in_the_pages_language(lang):
    from types import SimpleNamespace

    from strongroom.appliance import errors
    from strongroom.appliance.web import i18n
    from strongroom.appliance.web.portal import STATUS, _explain
    english = SimpleNamespace(gettext=lambda text: text)
    local = SimpleNamespace(gettext=i18n.translations(lang).gettext)
    for cls, _status in STATUS:
        e = cls("the service's own words")
        assert _explain(local, e) != _explain(english, e), cls.__name__
    assert _explain(local, errors.Denied("x")) != _explain(local, errors.NotFound("x"))
