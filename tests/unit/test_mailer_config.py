"""The [mail] and [notify] options (issue 13): their defaults, the values each accepts,
and the values each refuses with one line naming the file and the option."""
import tomllib

import pytest

from strongroom import config as configmod
from strongroom.config import ConfigError

LITTER = ("~$*", "~*.tmp", ".~lock.*#", "*.part", "*.crdownload", "._*", ".DS_Store",
          "Thumbs.db", "desktop.ini")


def load(tmp_path, text: str):
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "strongroom.toml").write_text(text, "utf-8")
    return configmod.load(tmp_path)


def test_defaults_send_no_mail_and_ignore_the_litter(tmp_path):
    cfg = load(tmp_path, "")
    mail, notify = cfg.mail, cfg.notify
    assert (mail.host, mail.port, mail.security, mail.username, mail.password_file,
            mail.sender, mail.verify_certificate) == ("", 587, "starttls", "", "", "", True)
    assert (notify.quiet_period, notify.webhook_url, notify.webhook_secret_file) == (
        300.0, "", "")
    assert notify.ignore == LITTER


def test_the_example_file_shows_the_litter_as_a_toml_array():
    text = configmod.render_example()
    shown = [line for line in text.splitlines() if line.startswith("# ignore = ")]
    assert len(shown) == 1
    assert tomllib.loads(shown[0][2:])["ignore"] == list(LITTER)


def test_every_mail_option_set(tmp_path):
    cfg = load(tmp_path, """
[mail]
host = " mail.firm.example "
port = 465
security = "TLS"
username = "files@firm.example"
password_file = "smtp.pw"
sender = "Firm files <files@firm.example>"
verify_certificate = false
[notify]
quiet_period = "90s"
ignore = ["*.bak", "~*"]
webhook_url = "https://hooks.firm.example/strongroom?x=1"
webhook_secret_file = "/etc/strongroom/webhook.key"
""")
    assert (cfg.mail.host, cfg.mail.port, cfg.mail.security) == ("mail.firm.example", 465, "tls")
    assert cfg.mail.password_file == str(tmp_path.resolve() / "smtp.pw")
    assert cfg.mail.sender == "Firm files <files@firm.example>"
    assert cfg.mail.verify_certificate is False
    assert (cfg.notify.quiet_period, cfg.notify.ignore) == (90.0, ("*.bak", "~*"))
    assert cfg.notify.webhook_url == "https://hooks.firm.example/strongroom?x=1"
    assert cfg.notify.webhook_secret_file == "/etc/strongroom/webhook.key"


@pytest.mark.parametrize("section, option, value", [
    ("mail", "host", '"::1"'), ("mail", "host", '"127.0.0.1"'),
    ("mail", "sender", '"files@firm.example"'), ("mail", "sender", '""'),
    ("mail", "security", '"none"'), ("mail", "port", "25"),
    ("notify", "quiet_period", "0"), ("notify", "ignore", "[]"),
    ("notify", "webhook_url", '"http://127.0.0.1:8080/hook"'),
])
def test_accepted(tmp_path, section, option, value):
    load(tmp_path, f"[{section}]\n{option} = {value}\n")


@pytest.mark.parametrize("section, option, value, says", [
    ("mail", "host", '"mail.example:587"', "without a port"),
    ("mail", "host", '"smtp://mail.example"', "host name or address"),
    ("mail", "host", '"mail example"', "host name or address"),
    ("mail", "port", "0", "port 0"),
    ("mail", "port", "65536", "outside"),
    ("mail", "port", '"587"', "integer port"),
    ("mail", "security", '"ssl"', "starttls, tls, none"),
    ("mail", "verify_certificate", '"no"', "true or false"),
    ("mail", "sender", '"files"', "email address"),
    ("mail", "sender", '"a@b.example, c@d.example"', "email address"),
    ("mail", "sender", '"files@firm.example\\r\\nBcc: x@evil.example"', "email address"),
    ("mail", "username", "5", "expected a string"),
    ("notify", "quiet_period", '"soon"', "duration"),
    ("notify", "ignore", '"*.part"', "array of patterns"),
    ("notify", "ignore", '["*.part", 3]', "non-empty string"),
    ("notify", "ignore", '["*.part", ""]', "non-empty string"),
    ("notify", "ignore", '["tmp/*.part"]', "file name, not a path"),
    ("notify", "ignore", '["a\\nb"]', "control character"),
    ("notify", "webhook_url", '"ftp://hooks.example/x"', "http:// or https://"),
    ("notify", "webhook_url", '"https://"', "http:// or https://"),
    ("notify", "webhook_url", '"https://hooks.example:port/"', "http:// or https://"),
])
def test_refused_naming_file_and_option(tmp_path, section, option, value, says):
    with pytest.raises(ConfigError) as e:
        load(tmp_path, f"[{section}]\n{option} = {value}\n")
    message = str(e.value)
    assert str(tmp_path / "strongroom.toml") in message
    assert f"option {section}.{option}:" in message and says in message, message
    assert "\n" not in message


def test_an_unknown_mail_option_is_named(tmp_path):
    with pytest.raises(ConfigError) as e:
        load(tmp_path, '[mail]\npassword = "secret"\n')
    assert "unknown option mail.password" in str(e.value)
