"""appliance.notify.render: the digest's words (subject, 200 lines then "and N more",
links to the portal, the recipient's language) and what keeps names harmless (escaped
HTML, no control characters, nothing in a header); appliance.notify.webhook's
signature."""
import hashlib
import hmac

import pytest

from strongroom.appliance.notify import render, webhook

BASE = "https://files.firm.test:8443"


def shown(name: str, action: str = "added", folder: str = "/docs") -> render.Shown:
    return render.Shown(action, folder, name, False, 1234, "Sam", 1796212702.0)


def digest(lines, lang="en", tree="Acme Ltd", base=BASE) -> render.Text:
    return render.changes(lang, "alice", [render.Section(tree, lines)], base)


def test_subject_counts_new_documents_for_the_client():
    assert digest([shown("a.pdf"), shown("b.pdf")]).subject == "2 new documents for Acme Ltd"
    assert digest([shown("a.pdf")]).subject == "1 new document for Acme Ltd"
    assert digest([shown("a.pdf"), shown("b.pdf", "deleted")]).subject == \
        "2 changes to the documents of Acme Ltd"


def test_at_most_200_lines_then_how_many_more():
    words = digest([shown(f"f{i:03d}.pdf") for i in range(205)])
    assert "f199.pdf" in words.text and "f200.pdf" not in words.text
    assert "and 5 more" in words.text and "and 5 more" in words.html
    assert words.subject == "205 new documents for Acme Ltd"


def test_links_to_the_folder_and_the_account_page_only_with_the_portal():
    with_portal = digest([shown("a.pdf", folder="/docs/2026 Q3")])
    assert f"{BASE}/web/files?p=/docs/2026%20Q3" in with_portal.text
    assert f'href="{BASE}/web/files?p=/docs/2026%20Q3"' in with_portal.html
    assert f"{BASE}/web/account" in with_portal.text
    without = digest([shown("a.pdf")], base=None)
    assert "https://" not in without.text + without.html


@pytest.mark.parametrize("name", ["<script>alert(1)</script>.pdf", 'x" onmouseover="y.pdf',
                                  "a&amp;b.pdf"])
def test_names_are_escaped_in_html(name):
    html = digest([shown(name)]).html
    assert name not in html and render.html.escape(name, quote=True) in html


@pytest.mark.parametrize("name", ["two\nlines.pdf", "cr\rlf.pdf", "\u202egnp.exe",
                                  "tab\t.pdf", "nul\x00.pdf"])
def test_control_and_bidi_characters_in_names_become_a_replacement_character(name):
    words = digest([shown(name)], tree=f"Acme {name}")
    assert "\ufffd" in words.text and "\ufffd" in words.html and "\ufffd" in words.subject
    assert not any(ch in words.subject for ch in "\r\n\x00\u202e")
    assert "two\nlines" not in words.text and "\u202e" not in words.text + words.html


def test_the_message_carries_both_parts_and_the_headers():
    msg = render.message(sender="Strongroom <files@firm.test>", to="alice@acme.test",
                         words=digest([shown("a.pdf")]),
                         message_id="<strongroom.abc@firm.test>",
                         unsubscribe=f"{BASE}/web/account")
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Message-ID"] == "<strongroom.abc@firm.test>"
    assert msg["List-Unsubscribe"] == f"<{BASE}/web/account>"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert not any(p.is_attachment() for p in msg.walk())


@pytest.mark.parametrize("lang, words", [("sv", "ny"), ("he", "חדש")])
def test_the_recipients_language(lang, words):
    got = digest([shown("a.pdf")], lang=lang)
    assert words in got.subject
    assert got.html.startswith(f'<!DOCTYPE html><html lang="{lang}"')
    assert ('dir="rtl"' in got.html) == (lang == "he")


def test_security_notice():
    words = render.security("en", "alice", "password-changed", 1796212702.0, "10.0.0.9", BASE)
    assert words.subject == "Security notice: your password was changed"
    assert "alice" in words.text and "10.0.0.9" in words.text and f"{BASE}/web/account" in \
        words.text


def test_webhook_signature_is_the_hmac_of_the_body():
    body = b'{"changes": []}'
    assert webhook.signature(b"key", body) == \
        "sha256=" + hmac.new(b"key", body, hashlib.sha256).hexdigest()
