"""Starting configurations for the common cases (`idr config template NAME`): commented
YAML with canonicalization, exclusions and survivorship suited to each."""

from __future__ import annotations

from importlib.resources import files

from app.core.errors import IdrError

TEMPLATES: dict[str, str] = {
    "retail": "email, phone, loyalty id, postal address (CRM, stores, web shop)",
    "healthcare": "MRN, SSN, name + date of birth (EHR, claims, lab)",
    "financial": "account id, email, SSN (core banking, cards, online banking)",
    "b2b_saas": "email, email domain, company name: clusters are accounts (CRM, billing, product)",
}


def template_text(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    if key not in TEMPLATES:
        raise IdrError(f"no template {name!r}; templates: {', '.join(TEMPLATES)}", field="name")
    return files(__package__).joinpath(f"{key}.yml").read_text(encoding="utf-8")
