"""Template filters for amounts, consent codes and chain addresses."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from marketplace.consent import term
from marketplace.consent.diseases import Disease, disease, picker
from marketplace.models.lifecycle import State, state_in_words

register = template.Library()
DECIMALS = 18  # GeneToken, like most ERC-20 tokens


@register.filter
def tokens(base_units: object) -> str:
    """Token base units as a human amount: 1500000000000000000 -> "1.5"."""
    try:
        value = Decimal(str(base_units)) / (Decimal(10) ** DECIMALS)
    except ArithmeticError:
        return str(base_units)
    text = format(value.normalize(), "f")
    return text if "." not in text else text.rstrip("0").rstrip(".")


@register.filter
def format_label(described: object) -> str:
    """What a file is, container first (issue 16 §9), from a mapping with "format" and
    "format_version" (a file's metadata, or a listing's file entry): ("BAM", "SAM header
    v1.4") -> "BAM (SAM header v1.4)", since @HD VN is only the version of the SAM spec its
    header follows (SAM v1 §1.3). A version that starts with its format ("VCFv4.2",
    "BAM (SAM v1.6)", "CRAM 3.1 (SAM v1.6)") is shown as it is. Files ingested before the
    inspector labelled by container still hold the bare header version."""
    if not isinstance(described, dict):
        return ""
    kind = str(described.get("format") or "").strip()
    text = str(described.get("format_version") or "").strip()
    if not text:
        return kind
    if not kind or text.upper().startswith(kind.upper()):
        return text
    return f"{kind} ({text})"


@register.filter
def duo_label(code: str) -> str:
    found = term(code)
    return f"{found.shorthand}: {found.label}" if found else code


@register.filter
def duo_description(code: str) -> str:
    found = term(code)
    return found.description if found else ""


@register.filter
def duo_value(value: str) -> SafeString:
    """A consent code's value in words (issue 16 §10): a shipped MONDO disease by its name,
    its id in small print after it; any other value as it is."""
    text = str(value)
    found = disease(text) if text.startswith("MONDO:") else None
    if found is None or not found.label:
        return format_html("{}", text)
    return format_html('{} <small class="code-id">{}</small>', found.label, text)


FIT_WORDS = {"fits": "Fits", "needs_review": "Needs review", "does_not_fit": "Does not fit"}


@register.filter
def fit_word(outcome: str) -> str:
    """A consent matcher outcome as the form names it: "does_not_fit" -> "Does not fit"."""
    return FIT_WORDS.get(str(outcome), str(outcome))


@register.filter
def short_hex(value: str, keep: int = 10) -> str:
    """0x1234…abcd: enough to recognise, with the whole value in a title attribute."""
    text = str(value or "")
    return text if len(text) <= 2 * keep else f"{text[:keep]}…{text[-4:]}"


@register.filter
def from_unix(seconds: object) -> datetime | None:
    """A chain timestamp (seconds since 1970, UTC) as a datetime for the `date` filter."""
    try:
        return datetime.fromtimestamp(int(str(seconds)), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


@register.filter
def permission_first(codes: list[dict[str, str]]) -> list[dict[str, str]]:
    """Consent codes with the data use permission before its modifiers."""
    return sorted(
        codes, key=lambda entry: not ((found := term(entry["code"])) and found.is_permission)
    )


@register.simple_tag
def disease_picker() -> list[Disease]:
    """The DS picker's diseases (name and MONDO id) for the forms' disease field."""
    return picker()


@register.filter
def state_words(state: str) -> str:
    """A request's state as messages put it: "payable" -> "awaiting payment"."""
    return state_in_words(str(state))


# Timeline entries (audit actions without "request.") in words, not as stored.
ACTION_WORDS = {
    "submit": "Sent",
    "approve": "Approved",
    "reject": "Rejected",
    "withdraw": "Withdrawn",
    "close": "Closed by an admin",
    "voucher": "Payment voucher signed",
    "paid": "Payment received",
    "deliver": "Delivery recorded on chain",
    "undelivered": "Delivery failed, to be tried again",
    "grant": "Access granted",
    "settled": "Payment released to the donor",
    "refunding": "Refund started",
    "refund": "Refunded",
    "refunded": "Refunded",
    "lapse": "Payment window closed",
    "expire": "Access expired",
    "revoke": "Access revoked",
    "download": "Downloaded",
    "flag": "Flagged for admins",
    "reverted": "Undone by a chain reorganisation",
    # Committees, agreements, attachments and renewals (issue 19)
    "vote": "Committee member voted",
    "return": "Returned to the researcher for changes",
    "resubmit": "Sent again after changes",
    "edit": "Changed by the researcher",
    "message": "Message in the request's thread",
    "attach": "Document attached for the committee",
    "attachment_open": "Attachment opened by the committee",
}


@register.filter
def action_words(action: str) -> str:
    """A timeline entry's action in words: "voucher" -> "Payment voucher signed"."""
    text = str(action)
    return ACTION_WORDS.get(text, text.replace("_", " ").capitalize())


@register.filter
def state_label(state: str) -> str:
    """A request state's label: "payable" -> "Awaiting payment"."""
    try:
        return str(State(str(state)).label)
    except ValueError:
        return str(state)
