"""Webhooks: one JSON POST per batch of changes to [notify] webhook_url, signed so the
receiver can tell it came from this appliance.

The signature header is `X-Strongroom-Signature: sha256=<hex>`, the HMAC-SHA256 of
the exact body bytes under the key in [notify] webhook_secret_file (its contents,
without a trailing newline). A receiver recomputes it over the raw body and compares
in constant time. https URLs are verified against the system's trust store; waits
are bounded; redirects are not followed (a POST must not turn into something else
elsewhere); any answer but 2xx is a failure, retried like a mail (appliance.notify
.sender).
"""
import hashlib
import hmac
import socket
import ssl
import urllib.error
import urllib.request
from pathlib import Path

from strongroom.appliance.errors import StrongroomError

TIMEOUT = 15.0          # seconds, for connecting and for the answer
HEADER = "X-Strongroom-Signature"


class WebhookError(StrongroomError):
    """A POST was not accepted; str() is one line saying why."""


def signature(key: bytes, body: bytes) -> str:
    """The header's value for `body`: "sha256=" and the hex HMAC-SHA256 under `key`."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def read_key(path: str) -> bytes:
    """The key in `path`, without its trailing newline; WebhookError if there is none."""
    if not path:
        raise WebhookError("[notify] webhook_secret_file is empty: the POSTs could not be "
                           "signed")
    try:
        key = Path(path).read_bytes().removesuffix(b"\n").removesuffix(b"\r")
    except OSError as e:
        raise WebhookError(f"cannot read the webhook key {path}: {e.strerror or e}") from None
    if not key:
        raise WebhookError(f"the webhook key file {path} is empty")
    return key


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None     # the 3xx is then raised as an HTTPError: a failure


def post(url: str, key: bytes, body: bytes, *, timeout: float = TIMEOUT) -> str:
    """POST `body` (JSON) to `url`, signed with `key`; the answer's status line when it
    is 2xx, WebhookError otherwise."""
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", HEADER: signature(key, body),
        "User-Agent": "Strongroom"})
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=ssl.create_default_context()), _NoRedirect())
    try:
        with opener.open(request, timeout=timeout) as answer:
            answer.read(4096)
            return f"{answer.status} {answer.reason}"
    except urllib.error.HTTPError as e:
        raise WebhookError(f"the webhook {url} answered {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            reason = f"its certificate did not verify: {reason.verify_message}"
        raise WebhookError(f"cannot reach the webhook {url}: {reason}") from None
    except (socket.timeout, TimeoutError):
        raise WebhookError(f"the webhook {url} did not answer within {timeout:g} s") from None
    except OSError as e:
        raise WebhookError(f"lost the connection to the webhook {url}: "
                           f"{e.strerror or e}") from None
