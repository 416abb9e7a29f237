"""Which file names are editor and OS litter ([notify] ignore): never notified, and
only their latest content kept (appliance.notify.ignore)."""
import pytest

from strongroom.appliance.notify.ignore import DEFAULT_IGNORE, ignored

# (name, litter by the default list?)
NAMES = [
    ("~$report.docx", True),            # Word's owner file
    ("~$", True),
    ("~WRD0000.tmp", True),             # Word's new content before it takes the name
    ("~WRL0001.tmp", True),             # ... and the old document while it does
    ("~wrl0001.TMP", True),
    (".~lock.report.odt#", True),       # LibreOffice's lock file
    ("download.part", True),            # Firefox, WinSCP
    ("setup.exe.crdownload", True),     # Chrome
    ("._report.pdf", True),             # macOS AppleDouble
    (".DS_Store", True),
    (".ds_store", True),                # a case-insensitive volume wrote it so
    ("Thumbs.db", True),
    ("THUMBS.DB", True),
    ("desktop.ini", True),
    ("Desktop.ini", True),
    ("name\nwith newline.part", True),  # a newline does not end the match early
    ("report.docx", False),
    ("report.pdf", False),
    ("~report.docx", False),            # only ~$ and ~*.tmp, not every tilde
    ("report.tmp", False),
    ("~WRD0000.tmp.docx", False),       # a pattern matches the whole name
    ("part", False),
    ("report.partial", False),
    ("report.docx~", False),            # a backup, not litter (see the service's save rule)
    (".DS_Store.pdf", False),
    ("My Thumbs.db", False),
    ("lock.odt#", False),
    ("x._report", False),
    ("", False),
]


@pytest.mark.parametrize("name,expected", NAMES)
def test_the_default_list(name, expected):
    assert ignored(name, DEFAULT_IGNORE) is expected
    assert ignored(name) is expected         # the default when no list is given


def test_the_default_is_the_schemas():
    assert DEFAULT_IGNORE == ("~$*", "~*.tmp", ".~lock.*#", "*.part", "*.crdownload", "._*",
                              ".DS_Store", "Thumbs.db", "desktop.ini")


@pytest.mark.parametrize("name,patterns,expected", [
    ("report.docx", (), False),                       # an empty list ignores nothing
    (".DS_Store", (), False),
    ("scan-001.tif", ("scan-???.tif",), True),
    ("scan-0001.tif", ("scan-???.tif",), False),
    ("a.bak", ("*.[bB][aA][kK]", "*.old"), True),
    ("a.OLD", ("*.[bB][aA][kK]", "*.old"), True),
    ("~$report.docx", ("*.old",), False),             # a configured list replaces the default
])
def test_a_configured_list(name, patterns, expected):
    assert ignored(name, patterns) is expected


def test_a_list_in_any_iterable():
    assert ignored("x.part", ["*.part"]) and ignored("x.part", iter(["*.part"]))
