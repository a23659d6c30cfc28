"""The delivery loop's HTTP session to the LINE API: one pool for all its sender threads.

requests, left to itself, re-reads the environment (proxies, CA bundle) and `~/.netrc` on
every call (`trust_env`), which was ~40% of its CPU per push in bench/drop_pushes.py. This
session reads them once, here, and keeps a connection per sender thread, so a drop's pushes
reuse warm connections (docs/interfaces.md § Campaign drops). A `.netrc` entry for the
LINE host is not applied: the channel token is the only credential a push carries.
"""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter

from services.chat_agent.line.client import LineClient
from shared.config import Settings


def pooled_session(base_url: str, connections: int) -> requests.Session:
    """A session to `base_url` with `connections` pooled connections and the process's
    environment (proxies, REQUESTS_CA_BUNDLE) applied once."""
    session = requests.Session()
    found = session.merge_environment_settings(base_url, {}, None, None, None)
    session.proxies.update(found["proxies"])
    session.verify = found["verify"]
    session.trust_env = False
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, connections))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def delivery_client(settings: Settings, senders: int) -> LineClient:
    """The LINE client of a delivery loop with `senders` sender threads."""
    return LineClient(
        settings.messaging_api_base,
        settings.line_channel_access_token,
        session=pooled_session(settings.messaging_api_base, senders),
    )
