"""The notices' words: Dutch, the scheme's language, from Jinja2 templates.

Each type has one text template (``templates/<type>.txt``); the HTML part is
the same text laid out by ``templates/mail.html`` (escaped, paragraph by
paragraph), so the two parts never say different things. Money is written
``€ 1.234,56`` and dates ``31/12/2026``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).parent / "templates"

SUBJECTS = {
    "payment_instructions": "Betaalinstructies eigen bijdrage, project {project_number}",
    "own_share_reminder": "Herinnering: eigen bijdrage voor project {project_number} te betalen",
    "own_share_received": "Eigen bijdrage ontvangen, project {project_number}",
    "subsidy_topped_up": "Steun gestort, project {project_number}",
    "payout_ordered": "Betaalopdracht voor project {project_number}",
    "payout_executed": "Betaling uitgevoerd, project {project_number}",
    "application_lapsed": "Steunaanvraag {project_number} vervallen",
    "application_refused": "Steunaanvraag {project_number} geweigerd",
    "project_closed": "Project {project_number} afgesloten",
    "project_stopped": "Project {project_number} stopgezet",
    "recovery_issued": "Terugvordering voor project {project_number}",
    "application_awaiting_confirmation": "Nieuwe steunaanvraag {project_number} wacht op uw bevestiging",
    "answer_reminder": "Herinnering: steunaanvraag {project_number} wacht op uw bevestiging",
}
RULES = {
    "provider_answer": "de dienstverlener heeft de aanvraag niet binnen {answer_days} dagen bevestigd",
    "own_share_deposit": "de eigen bijdrage is niet binnen de termijn betaald",
    "completion": "de dienst is niet op tijd afgerond",
    "closure": "de einddatum van het project is verstreken",
}
STOP_REASONS = {
    "on_request": "op verzoek van de onderneming",
    "enterprise_ceased": "stopzetting van de activiteit van de onderneming",
    "provider_ceased": "stopzetting van de activiteit van de dienstverlener",
    "death_or_incapacity": "overlijden of volledige arbeidsongeschiktheid",
    "finished_cheaper": "het project kostte minder dan gepland",
    "provider_cancelled": "de dienstverlener annuleerde de dienst",
    "other": "een andere reden",
}
SERVICES = {"training": "opleiding", "advice": "advies"}


def euro(amount: str | int | Decimal) -> str:
    """``"1234.56"`` -> ``€ 1.234,56``."""
    value = Decimal(str(amount)).quantize(Decimal("0.01"))
    sign = "-" if value < 0 else ""
    whole, cents = f"{abs(value):.2f}".split(".")
    groups = f"{int(whole):,}".replace(",", ".")
    return f"€ {sign}{groups},{cents}"


def datum(day: str | date) -> str:
    """``"2026-12-31"`` -> ``31/12/2026``."""
    value = day if isinstance(day, date) else date.fromisoformat(day)
    return value.strftime("%d/%m/%Y")


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["euro"] = euro
    environment.filters["datum"] = datum
    environment.globals.update(rules=RULES, stop_reasons=STOP_REASONS, services=SERVICES)
    return environment


_ENVIRONMENT = _environment()


def render(type_: str, data: dict[str, Any], party: str) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of a notice to ``party``."""
    subject = SUBJECTS[type_].format(**data)
    text = _ENVIRONMENT.get_template(f"{type_}.txt").render(**data, party=party)
    paragraphs = [block.splitlines() for block in text.strip().split("\n\n")]
    html = _ENVIRONMENT.get_template("mail.html").render(subject=subject, paragraphs=paragraphs)
    return subject, text, html
