"""The console's only way to the other services: their HTTP APIs (docs/interfaces.md
§ Marketer campaign API, § Decision explanations and forecasts, § Reports and statements).

One pooled `requests.Session` per process, short timeouts, and problem+json answers turned
into `ApiProblem` so a page can put each `errors[].field` next to its form field. The
marketer key travels only in the Authorization header of these calls; it is never logged.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
import structlog
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

log = structlog.get_logger(__name__)

JsonDict = dict[str, Any]
POOL_SIZE = 32
PAGE_LIMIT = 200


@dataclass
class ApiProblem(Exception):
    """A 4xx/5xx answer of an API, as its problem+json document said it."""

    status: int
    title: str
    detail: str = ""
    errors: list[dict[str, str]] = field(default_factory=list)
    reason: str | None = None
    retry_after: int | None = None

    def __str__(self) -> str:
        return f"{self.status} {self.title}: {self.detail}"


class ApiUnavailable(Exception):
    """The API did not answer (connection refused, timeout)."""

    def __init__(self, service: str) -> None:
        super().__init__(f"{service} did not answer")
        self.service = service


# A pooled keep-alive connection the server has just closed (gunicorn drops idle ones after
# a few seconds) fails the next request with a reset; a GET is safe to send again, once.
STALE_CONNECTION_RETRY = Retry(
    total=1, connect=1, read=1, status=0, other=0, allowed_methods=frozenset({"GET", "HEAD"})
)


class ApiClient:
    """Typed calls to the campaign engine and the redemption tracker for one marketer key."""

    def __init__(self, engine_url: str, tracker_url: str, timeout_s: float = 10.0) -> None:
        self._bases = {"campaign_engine": engine_url, "redemption_tracker": tracker_url}
        self._timeout = timeout_s
        self._http = requests.Session()
        adapter = HTTPAdapter(
            pool_connections=4, pool_maxsize=POOL_SIZE, max_retries=STALE_CONNECTION_RETRY
        )
        self._http.mount("http://", adapter)
        self._http.mount("https://", adapter)
        self._fanout = ThreadPoolExecutor(max_workers=8, thread_name_prefix="console-api")

    # -- plumbing ---------------------------------------------------------------
    def _call(
        self,
        service: str,
        method: str,
        path: str,
        key: str,
        *,
        json: JsonDict | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        url = self._bases[service] + path
        try:
            response = self._http.request(
                method,
                url,
                json=json,
                params=params,
                headers={"Authorization": f"Bearer {key}", **(headers or {})},
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            log.warning(
                "console_api_unavailable", service=service, path=path, error=type(exc).__name__
            )
            raise ApiUnavailable(service) from exc
        if response.status_code >= 400:
            raise _problem(response)
        return response

    def _json(self, service: str, method: str, path: str, key: str, **kw: Any) -> JsonDict:
        body: JsonDict = self._call(service, method, path, key, **kw).json()
        return body

    # -- campaigns (campaign engine) ------------------------------------------
    def check_key(self, key: str) -> None:
        """Raise ApiProblem unless `key` may use the marketer campaign API (401 unknown, 403 role)."""
        self._call("campaign_engine", "GET", "/v1/campaigns", key, params={"limit": "1"})

    def campaigns(self, key: str, status: str | None = None) -> list[JsonDict]:
        """Every campaign, in creation order (all pages)."""
        items: list[JsonDict] = []
        params = {"limit": str(PAGE_LIMIT), **({"status": status} if status else {})}
        while True:
            page = self._json("campaign_engine", "GET", "/v1/campaigns", key, params=params)
            items += page["items"]
            if not page.get("next_cursor"):
                return items
            params["cursor"] = page["next_cursor"]

    def campaign(self, key: str, campaign_id: str) -> JsonDict:
        return self._json("campaign_engine", "GET", f"/v1/campaigns/{campaign_id}", key)

    def create_campaign(self, key: str, body: JsonDict) -> JsonDict:
        return self._json("campaign_engine", "POST", "/v1/campaigns", key, json=body)

    def update_campaign(self, key: str, campaign_id: str, body: JsonDict) -> JsonDict:
        return self._json(
            "campaign_engine", "PATCH", f"/v1/campaigns/{campaign_id}", key, json=body
        )

    def transition(self, key: str, campaign_id: str, action: str) -> JsonDict:
        """activate, pause or end."""
        return self._json("campaign_engine", "POST", f"/v1/campaigns/{campaign_id}/{action}", key)

    def forecast(self, key: str, campaign_id: str) -> JsonDict:
        path = f"/v1/campaigns/{campaign_id}/forecast"
        return self._json("campaign_engine", "POST", path, key, json={})

    # -- decisions and models (campaign engine) --------------------------------
    def explanation(self, key: str, decision_id: str, lang: str) -> JsonDict:
        path = f"/v1/decisions/{decision_id}/explanation"
        return self._json("campaign_engine", "GET", path, key, params={"lang": lang})

    def decisions_by_code(self, key: str, code: str) -> list[JsonDict]:
        body = self._json(
            "campaign_engine", "GET", "/v1/decisions", key, params={"coupon_code": code}
        )
        items: list[JsonDict] = body["items"]
        return items

    def models(self, key: str) -> JsonDict:
        return self._json("campaign_engine", "GET", "/v1/models", key)

    # -- drops (campaign engine) ------------------------------------------------
    def drops(self, key: str, campaign_id: str) -> list[JsonDict]:
        body = self._call("campaign_engine", "GET", f"/v1/campaigns/{campaign_id}/drops", key)
        data = body.json()
        items: list[JsonDict] = data["items"] if isinstance(data, dict) else data
        return items

    def start_drop(self, key: str, campaign_id: str, body: JsonDict) -> JsonDict:
        path = f"/v1/campaigns/{campaign_id}/drops"
        return self._json("campaign_engine", "POST", path, key, json=body)

    def cancel_drop(self, key: str, campaign_id: str, drop_id: str) -> JsonDict:
        path = f"/v1/campaigns/{campaign_id}/drops/{drop_id}/cancel"
        return self._json("campaign_engine", "POST", path, key)

    # -- reports and statements (redemption tracker) ----------------------------
    def report(self, key: str, campaign_id: str) -> JsonDict | None:
        """The campaign's report; None while the tracker has no copy of it (a draft)."""
        try:
            return self._json(
                "redemption_tracker", "GET", f"/v1/campaigns/{campaign_id}/report", key
            )
        except ApiProblem as problem:
            if problem.status == 404:
                return None
            raise

    def reports(self, key: str, campaign_ids: list[str]) -> dict[str, JsonDict | None]:
        """The reports of many campaigns, fetched side by side over the pooled connections."""
        found = self._fanout.map(lambda cid: self.report(key, cid), campaign_ids)
        return dict(zip(campaign_ids, found, strict=True))

    def statement(self, key: str, campaign_id: str, period: str) -> JsonDict:
        params = {"campaign_id": campaign_id, "period": period}
        return self._json("redemption_tracker", "GET", "/v1/statements", key, params=params)

    def statement_csv(self, key: str, campaign_id: str, period: str) -> tuple[bytes, str]:
        """The statement as CSV bytes and the file name the tracker gave it."""
        params = {"campaign_id": campaign_id, "period": period, "format": "csv"}
        response = self._call("redemption_tracker", "GET", "/v1/statements", key, params=params)
        disposition = response.headers.get("Content-Disposition", "")
        name = disposition.split("filename=")[-1].strip('"') if "filename=" in disposition else ""
        return response.content, name or f"statement-{campaign_id}-{period}.csv"


def _problem(response: requests.Response) -> ApiProblem:
    """The ApiProblem of an error answer (problem+json, or whatever came back)."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    errors = [
        {"field": str(e.get("field", "")), "message": str(e.get("message", ""))}
        for e in body.get("errors") or []
        if isinstance(e, dict)
    ]
    retry = response.headers.get("Retry-After")
    return ApiProblem(
        status=response.status_code,
        title=str(body.get("title") or response.reason or "Error"),
        detail=str(body.get("detail") or ""),
        errors=errors,
        reason=body.get("reason"),
        retry_after=int(retry) if retry and retry.isdigit() else None,
    )


def not_available(problem: ApiProblem) -> bool:
    """True when the route itself is missing (an API another part has not built yet)."""
    return problem.status in (404, 405) and not problem.errors
