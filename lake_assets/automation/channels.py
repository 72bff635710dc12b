"""Delivery channels for run reports: plain SMTP (smtplib) and an optional JSON webhook.

Dagster's `make_email_on_run_failure_sensor` only speaks SSL/STARTTLS with a login; plain SMTP
(an internal relay, or aiosmtpd in the tests) needs smtplib. Delivery never raises: it returns the
problems so the caller can log them next to the run failure they were about.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from urllib.parse import urlsplit

import requests

from lake_assets.automation.run_report import RunReport
from lake_assets.config import NotifyConfig


def send_email(report: RunReport, notify: NotifyConfig) -> str | None:
    """Send the report to `notify.email`; returns an error description or None."""
    if not notify.email:
        return None
    smtp = notify.smtp
    if not smtp.host:
        return "e-mail recipients are configured but LAKE_SMTP_HOST is not set"
    message = EmailMessage()
    message["Subject"] = report.subject()
    message["From"] = smtp.sender
    message["To"] = ", ".join(notify.email)
    message["X-Dagster-Run-Id"] = report.run_id
    message.set_content(report.as_text())
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds) as client:
            if smtp.starttls:
                client.starttls()
            if smtp.user:
                client.login(smtp.user, smtp.password)
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        return f"SMTP delivery to {smtp.host}:{smtp.port} failed: {type(exc).__name__}: {exc}"
    return None


def post_webhook(report: RunReport, notify: NotifyConfig) -> str | None:
    """POST the report as JSON to `notify.webhook_url` (if set); returns an error description or None."""
    if not notify.webhook_url:
        return None
    try:
        response = requests.post(notify.webhook_url, json={"subject": report.subject(), **report.as_json()}, timeout=10)
        response.raise_for_status()
    except requests.RequestException as exc:
        # A webhook's path and query are its credential (Slack, Teams): name the host and the status
        # only; requests' own message repeats the whole URL.
        status = f" (HTTP {exc.response.status_code})" if exc.response is not None else ""
        return f"webhook {webhook_host(notify.webhook_url)} failed: {type(exc).__name__}{status}"
    return None


def webhook_host(url: str) -> str:
    """`scheme://host[:port]/…` of a webhook URL: what may be logged of it."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}{f':{parts.port}' if parts.port else ''}/…"


def deliver(report: RunReport, notify: NotifyConfig) -> list[str]:
    """Every configured channel, independently: one failing channel does not stop the others."""
    return [problem for problem in (send_email(report, notify), post_webhook(report, notify)) if problem]
