"""Can a W&B run go online? A short probe of the W&B host before the run starts.

Without network, `wandb.init(mode="online")` waits for `init_timeout` (and wandb's own
retries) before it fails. One HTTP request to the host with a 3 s bound answers the question
first, so such a run logs offline almost at once. The host is the one wandb would use: the
run's `settings.base_url`, else wandb's own settings (WANDB_BASE_URL, `wandb login --host`);
proxies from the environment apply as they do for wandb. No credentials are sent.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

PROBE_TIMEOUT_S = 3.0


def base_url(settings: Mapping[str, Any] | None = None) -> str:
    """The W&B server a run with these `settings` talks to."""
    if settings and settings.get("base_url"):
        return str(settings["base_url"])
    import wandb

    return wandb.setup().settings.base_url  # env and settings files, as wandb.init reads them


def answers(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether the server at `url` answers an HTTP request within `timeout` seconds in all
    (name lookup included); any HTTP status or TLS reply counts."""
    answered: list[bool] = []

    def probe() -> None:
        try:
            with urllib.request.urlopen(
                urllib.request.Request(url, method="HEAD"), timeout=timeout
            ):
                pass
        except (urllib.error.HTTPError, http.client.HTTPException):
            pass  # an HTTP error status, even a garbled reply, is an answer
        except urllib.error.URLError as err:
            if not isinstance(err.reason, ssl.SSLError):  # a TLS reply is an answer too
                return
        except (OSError, ValueError):  # stalled (timeout), refused; a malformed URL
            return
        answered.append(True)

    # a thread bounds the name lookup as well, which urlopen's timeout does not cover
    thread = threading.Thread(target=probe, daemon=True, name="wandb-probe")
    thread.start()
    thread.join(timeout)
    return bool(answered)


def offline_reason(settings: Mapping[str, Any] | None = None) -> str | None:
    """Why an online run with these `settings` should log offline instead, or None."""
    url = base_url(settings)
    if answers(url):
        return None
    return f"{url} did not answer within {PROBE_TIMEOUT_S:g} s"
