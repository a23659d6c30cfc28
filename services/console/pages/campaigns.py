"""Campaign list, create and edit forms, and the lifecycle with its confirmation step
(docs/console.md § Pages; the API is docs/interfaces.md § Marketer campaign API)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from services.console.api_client import ApiProblem
from services.console.pages import campaign_form as cf
from services.console.web import campaign_or_404, console, field_errors, notify, signed_in_key

STATUSES = ("draft", "active", "paused", "ended")
ACTIONS = {
    # action: (heading, what happens, button, flash, statuses it applies to)
    "activate": (
        "Activate campaign?",
        "Customers can get its coupons from now on.",
        "Yes, activate",
        "Campaign activated.",
        ("draft", "paused"),
    ),
    "pause": (
        "Pause campaign?",
        "No new coupons go out until you activate it again; issued coupons stay valid.",
        "Yes, pause",
        "Campaign paused.",
        ("active",),
    ),
    "end": (
        "End campaign?",
        "Ending is final: no new coupons, and it cannot be activated again.",
        "Yes, end",
        "Campaign ended.",
        ("active", "paused"),
    ),
}


def blueprint() -> Blueprint:
    bp = Blueprint("campaigns", __name__)
    bp.add_url_rule("/", "home", lambda: redirect(url_for("campaigns.index"), 303))
    bp.add_url_rule("/campaigns", "index", index)
    bp.add_url_rule("/campaigns/new", "new", new, methods=["GET", "POST"])
    bp.add_url_rule("/campaigns/<campaign_id>/edit", "edit", edit, methods=["GET", "POST"])
    bp.add_url_rule(
        "/campaigns/<campaign_id>/<any(activate, pause, end):action>",
        "lifecycle",
        lifecycle,
        methods=["GET", "POST"],
    )
    return bp


def index() -> str:
    """Every campaign with its headline figures; filter by status and name."""
    status = request.args.get("status", "")
    query = request.args.get("q", "").strip()
    api, key = console().api, signed_in_key()
    items = api.campaigns(key, status if status in STATUSES else None)
    if query:
        items = [c for c in items if query.casefold() in c["name"].casefold()]
    live = [c["campaign_id"] for c in items if c["status"] != "draft"]
    reports = api.reports(key, live)
    rows = [(c, reports.get(c["campaign_id"])) for c in items]
    return render_template(
        "campaigns.html", rows=rows, status=status, query=query, statuses=STATUSES
    )


def new() -> ResponseReturnValue:
    zone = console().config.zone
    if request.method == "GET":
        return _form_page("new", {}, None)
    body = cf.body_from_form(request.form, zone)
    try:
        created = console().api.create_campaign(signed_in_key(), body)
    except ApiProblem as problem:
        return _form_page("new", request.form.to_dict(flat=False), problem, status=problem.status)
    notify("Campaign saved.")
    return redirect(url_for("detail.show", campaign_id=created["campaign_id"]), 303)


def edit(campaign_id: str) -> ResponseReturnValue:
    api, key, zone = console().api, signed_in_key(), console().config.zone
    campaign = campaign_or_404(campaign_id)
    if request.method == "GET":
        return _form_page("edit", cf.form_from_campaign(campaign, zone), None, campaign)
    patch = cf.changes(cf.body_from_form(request.form, zone), campaign)
    try:
        if patch:
            api.update_campaign(key, campaign_id, patch)
    except ApiProblem as problem:
        values = request.form.to_dict(flat=False)
        return _form_page("edit", values, problem, campaign, status=problem.status)
    notify("Campaign saved.")
    return redirect(url_for("detail.show", campaign_id=campaign_id), 303)


def lifecycle(campaign_id: str, action: str) -> ResponseReturnValue:
    """GET: the confirmation step; POST: do it, and say what happened."""
    heading, consequence, button, done, allowed = ACTIONS[action]
    if request.method == "GET":
        campaign = campaign_or_404(campaign_id)
        return render_template(
            "confirm.html",
            campaign=campaign,
            action=action,
            heading=heading,
            consequence=consequence,
            button=button,
            allowed=campaign["status"] in allowed,
        )
    try:
        console().api.transition(signed_in_key(), campaign_id, action)
    except ApiProblem as problem:
        if problem.status == 404:
            abort(404)
        notify(problem.detail or problem.title)
    else:
        notify(done)
    return redirect(url_for("detail.show", campaign_id=campaign_id), 303)


def _form_page(
    mode: str,
    values: dict[str, Any],
    problem: ApiProblem | None,
    campaign: dict[str, Any] | None = None,
    status: int = 200,
) -> Any:
    """The create/edit form with its values and, after a refusal, the errors by field."""
    flat = {
        k: (v[0] if isinstance(v, list) and len(v) == 1 and not k.endswith("languages") else v)
        for k, v in values.items()
    }
    count = sum(
        1 for k, v in flat.items() if k.startswith("offers.") and k.endswith(".title") and v
    )
    rows = cf.offer_rows(count)
    errors, loose = (
        field_errors(problem, cf.field_names(rows), cf.error_field) if problem else ({}, [])
    )
    live = campaign is not None and campaign["status"] in ("active", "paused")
    page = render_template(
        "campaign_form.html",
        mode=mode,
        values=flat,
        errors=errors,
        loose=loose,
        campaign=campaign,
        live=live,
        rows=rows,
        cf=cf,
    )
    if status >= 500 or status < 400:
        status = 200 if status < 400 else 502
    return page, status
