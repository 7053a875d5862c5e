"""Sending alerts: a Teams or Slack incoming webhook and/or e-mail over SMTP.

Why both: teams watch a channel, on-call people read mail. An alert is sent once, when it is
raised (:class:`nav_crm_ops.store.alerts.AlertChanges`); a persisting condition is not sent
again. Sending never fails a run: what went wrong is recorded on the alert (``notified``) and
returned as a note, in words that never contain the webhook URL (it carries its own secret
token) or the SMTP password — both come from environment variables named in ``[alerts]``.
"""

from __future__ import annotations

import os
import smtplib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from enum import StrEnum
from typing import Any

import httpx

from ..config import WorkspaceConfig
from ..store import StateStore
from ..store.alerts import AlertChanges, AlertRepository, StoredAlert, describe
from .alerts import AlertFacts, AlertRule, AlertSettings, evaluate

__all__ = ["AlertCheck", "Channel", "alert_text", "check_alerts", "check_workspace_alerts",
           "send_alerts", "webhook_payload"]

TIMEOUT_S = 10.0


class Channel(StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"


def _title(alert: StoredAlert) -> str:
    try:
        return AlertRule(alert.rule).heading
    except ValueError:
        return alert.rule


def alert_text(alert: StoredAlert, workspace: str) -> str:
    """The alert in plain words: what happened, where to look, since when."""
    return (f"nav-crm-ops alert ({workspace}): {_title(alert)} — {alert.subject}\n"
            f"{alert.message}\nWhere to look: {alert.where}\n"
            f"Raised {alert.first_seen[:19].replace('T', ' ')} UTC, severity {alert.severity}.")


def webhook_payload(alert: StoredAlert, workspace: str) -> dict[str, Any]:
    """JSON both Slack and Microsoft Teams incoming webhooks accept: ``text`` (Slack, Teams
    connectors) and an Adaptive Card attachment (Teams workflows "when a Teams webhook request
    is received"); each ignores the part it does not use."""
    card = {"type": "AdaptiveCard", "version": "1.4",
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "body": [
                {"type": "TextBlock", "weight": "Bolder", "size": "Medium", "wrap": True,
                 "color": "Attention" if alert.severity == "error" else "Warning",
                 "text": f"{_title(alert)} — {alert.subject}"},
                {"type": "TextBlock", "wrap": True, "text": alert.message},
                {"type": "FactSet", "facts": [
                    {"title": "Where to look", "value": alert.where},
                    {"title": "Workspace", "value": workspace},
                    {"title": "Raised (UTC)", "value": alert.first_seen[:19].replace("T", " ")},
                ]},
            ]}
    return {"text": alert_text(alert, workspace),
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                             "content": card}]}


def send_alerts(alerts: Sequence[StoredAlert], settings: AlertSettings, repo: AlertRepository,
                *, workspace: str, env: Mapping[str, str] | None = None,
                transport: httpx.BaseTransport | None = None) -> list[str]:
    """Send each raised alert on every configured channel; returns notes on what could not be
    sent (also recorded on the alert). Nothing configured: nothing sent, no note."""
    env = os.environ if env is None else env
    notes: list[str] = []
    url = env.get(settings.webhook_url_env or "", "") if settings.webhook_url_env else ""
    if settings.webhook_url_env and not url:
        notes.append(f"alerts are not sent to a webhook: the environment variable "
                     f"{settings.webhook_url_env} named by [alerts] webhook_url_env is not set")
    for alert in alerts:
        if url:
            notes += _record(repo, alert, Channel.WEBHOOK,
                             _post(url, webhook_payload(alert, workspace), transport))
        if settings.email_to and settings.smtp_host:
            notes += _record(repo, alert, Channel.EMAIL, _mail(alert, settings, workspace, env))
    return notes


def _record(repo: AlertRepository, alert: StoredAlert, channel: Channel, error: str,
            ) -> list[str]:
    repo.mark_sent(alert.id, channel.value, error)
    return [f"alert {alert.id} was not sent by {channel.value}: {error}"] if error else []


def _post(url: str, payload: dict[str, Any], transport: httpx.BaseTransport | None) -> str:
    """POST the payload; '' when the receiver accepted it, else why not (never the URL)."""
    try:
        with httpx.Client(timeout=TIMEOUT_S, transport=transport) as client:
            reply = client.post(url, json=payload)
    except httpx.HTTPError as exc:
        return f"the webhook could not be reached ({type(exc).__name__})"
    if reply.status_code >= 300:
        return f"the webhook answered HTTP {reply.status_code}"
    return ""


def _mail(alert: StoredAlert, settings: AlertSettings, workspace: str,
          env: Mapping[str, str]) -> str:
    """Send one e-mail; '' when the server accepted it, else why not (never the password)."""
    message = EmailMessage()
    message["Subject"] = f"[nav-crm-ops] {workspace}: {_title(alert)} — {alert.subject}"
    message["From"] = settings.email_from
    message["To"] = ", ".join(settings.email_to)
    message.set_content(alert_text(alert, workspace))
    password = env.get(settings.smtp_password_env or "", "") if settings.smtp_password_env \
        else ""
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT_S) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, password)
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        return (f"the mail server {settings.smtp_host}:{settings.smtp_port} refused or could "
                f"not be reached ({type(exc).__name__})")
    return ""


@dataclass(frozen=True)
class AlertCheck:
    """One evaluation: alerts raised, cleared and still open, and what could not be sent."""

    changes: AlertChanges
    notes: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """What the CLI and the job runner print."""
        return [*describe(self.changes), *self.notes]


def check_alerts(store: StateStore, settings: AlertSettings, *, workspace: str, erp: str,
                 now: datetime | None = None, env: Mapping[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None) -> AlertCheck:
    """Evaluate every rule on the state database, record what holds (one alert per
    condition), send the alerts raised now."""
    history = (settings.history_runs + 1) * 2  # a sync's second pass is a row pair, too
    facts = AlertFacts(**store.alerts.facts(runs_per_mapping=history), erp=erp)
    changes = store.alerts.record(evaluate(facts, settings, now))
    notes = send_alerts(changes.raised, settings, store.alerts, workspace=workspace, env=env,
                        transport=transport)
    return AlertCheck(changes, tuple(notes))


def check_workspace_alerts(config: WorkspaceConfig, store: StateStore, *,
                           now: datetime | None = None) -> AlertCheck:
    """:func:`check_alerts` with a workspace's ``[alerts]`` settings and names (the engine
    after every sync, the job runner after every job)."""
    erp = "NAV" if config.nav is not None else "Business Central"
    return check_alerts(store, config.alerts, workspace=config.workspace.name, erp=erp,
                        now=now)
