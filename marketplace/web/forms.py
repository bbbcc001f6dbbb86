"""Forms of the web UI; they validate shape, services decide."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from marketplace.consent import all_terms, term
from marketplace.consent.terms import parts
from marketplace.models import DataAccessAgreement, Dataset, Role
from marketplace.services.datasets import MAX_PRICE

# The largest price the escrow holds (uint96 base units), in GENE (18 decimals).
MAX_PRICE_GENE = Decimal(f"{MAX_PRICE // 10**18}.{MAX_PRICE % 10**18:018d}")


class LoginForm(AuthenticationForm):
    username = forms.CharField(
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class RegisterForm(forms.Form):
    username = forms.RegexField(
        regex=r"^[\w.@+-]+\Z",
        min_length=3,
        max_length=150,
        help_text="Letters, digits and @ . + - _ only.",
        widget=forms.TextInput(attrs={"autocomplete": "username"}),
    )
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(
        strip=False,
        min_length=1,
        max_length=128,
        help_text="At least 10 characters; not a common password, not only digits.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    role = forms.ChoiceField(
        choices=[
            (Role.DONOR.value, "Donor: I share genomic data"),
            (Role.RESEARCHER.value, "Researcher: I request access to data"),
        ],
        widget=forms.RadioSelect,
    )


# --- Consent codes, as people pick them ----------------------------------------------------
VALUE_FIELDS = {  # DUO terms that take a value, and the form field that carries it
    "DUO:0000007": "disease",
    "DUO:0000022": "region",
    "DUO:0000024": "moratorium",
    "DUO:0000025": "months",
}


def _term_choices(kind: str) -> list[tuple[str, str]]:
    # A term DUO split (NPUNCU into NPU and NCU, EBISPOT/DUO#55) is offered as its parts:
    # ticking both means the same to the matcher.
    return [
        (t.id, f"{t.shorthand}: {t.label}")
        for t in all_terms()
        if t.kind == kind and (t.is_permission or parts(t.id) == {t.id})
    ]


class ConsentFields(forms.Form):
    """A permission, its modifiers and the values some of them take."""

    permission = forms.ChoiceField(widget=forms.RadioSelect, choices=())
    modifiers = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple, choices=(), required=False
    )
    disease = forms.CharField(
        required=False,
        max_length=200,
        label="Disease (for DS)",
        help_text="Type the disease's name and pick it from the list (its MONDO id is "
        "filled in, e.g. MONDO:0005148 for type 2 diabetes); several separated by commas.",
        widget=forms.TextInput(attrs={"list": "consent-diseases"}),
    )
    region = forms.CharField(
        required=False, max_length=64, label="Region (for GS)", help_text="e.g. EU"
    )
    moratorium = forms.DateField(
        required=False,
        label="No publication before (for MOR)",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    months = forms.IntegerField(
        required=False, min_value=1, max_value=999, label="Months of use allowed (for TS)"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        permission = self.fields["permission"]
        modifiers = self.fields["modifiers"]
        assert isinstance(permission, forms.ChoiceField)
        assert isinstance(modifiers, forms.MultipleChoiceField)
        permission.choices = _term_choices("permission")
        modifiers.choices = _term_choices("modifier")

    def consent_codes(self) -> list[object]:
        """The codes as the services take them: "DUO:…" or {"code", "value"}."""
        data = self.cleaned_data
        codes: list[object] = []
        for code in [data["permission"], *data.get("modifiers", [])]:
            field = VALUE_FIELDS.get(code)
            if field is None:
                codes.append(code)
            elif field == "disease":  # a consent may name several diseases, one DS each
                diseases = str(data.get("disease") or "").replace(",", " ").split()
                codes.extend({"code": code, "value": d} for d in diseases or [""])
            else:
                value = data.get(field)
                codes.append({"code": code, "value": "" if value is None else str(value)})
        return codes

    @staticmethod
    def initial_from(codes: list[dict[str, str]]) -> dict[str, object]:
        modifiers: list[str] = []
        initial: dict[str, object] = {"modifiers": modifiers}
        for entry in codes:
            found = term(entry["code"])
            if found is None:
                continue
            if found.is_permission:
                initial["permission"] = entry["code"]
            else:
                modifiers.append(entry["code"])
            if entry.get("value") and entry["code"] in VALUE_FIELDS:
                name = VALUE_FIELDS[entry["code"]]
                if name == "disease" and initial.get(name):
                    initial[name] = f"{initial[name]}, {entry['value']}"
                else:
                    initial[name] = entry["value"]
        return initial


class ListingForm(ConsentFields):
    title = forms.CharField(max_length=200)
    description = forms.CharField(
        max_length=10_000, required=False, widget=forms.Textarea(attrs={"rows": 4})
    )
    # Not `files`: a Django form's `files` holds its uploads.
    file_ids = forms.MultipleChoiceField(
        label="Files", widget=forms.CheckboxSelectMultiple, choices=()
    )
    price = forms.DecimalField(
        label="Price (GENE)",
        min_value=Decimal("0.000000000000000001"),
        max_value=MAX_PRICE_GENE,
        max_digits=60,
        decimal_places=18,
        # Django's default reads "≥ 1E-18": say it in GENE, and what to enter instead.
        error_messages={
            "min_value": "Enter a price above 0 GENE: data is never listed for free here "
            "(the smallest price is 0.000000000000000001 GENE).",
            # The service would name the escrow's limit in base units; here it is in GENE.
            "max_value": f"Enter at most {MAX_PRICE_GENE:,f} GENE: the payment escrow "
            "cannot hold a larger amount.",
            "max_decimal_places": "Use at most 18 digits after the point: 1 GENE is "
            "10^18 base units.",
        },
        help_text="What a researcher pays for one access period; the market keeps 2.5%.",
    )
    access_days = forms.IntegerField(
        label="Access period (days)", min_value=1, max_value=3650, initial=365
    )
    review = forms.ChoiceField(
        widget=forms.RadioSelect, choices=Dataset.Review.choices, initial="committee"
    )
    dac = forms.ChoiceField(
        label="Data access committee",
        required=False,
        choices=(),
        help_text="Who reviews the requests (also those automatic review sends to a "
        "person). Without a choice, the platform's committee.",
    )
    field_order = ["title", "description", "file_ids", "permission", "disease", "modifiers"]

    def __init__(self, *args: Any, files: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from marketplace.selectors.committees import dac_list

        committees = self.fields["dac"]
        assert isinstance(committees, forms.ChoiceField)
        committees.choices = [
            (str(dac.pk), f"{dac.name} — {dac.policy_text()}") for dac in dac_list()
        ]
        field = self.fields["file_ids"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = files
        # The browser's own check would say "1E-18": give it the amount written out.
        self.fields["price"].widget.attrs.update({"min": "0.000000000000000001", "step": "any"})

    def terms(self) -> dict[str, object]:
        data = self.cleaned_data
        return {
            "title": data["title"],
            "description": data.get("description", ""),
            "files": data["file_ids"],
            "duo_codes": self.consent_codes(),
            "price": str(int(data["price"] * 10**18)),
            "access_days": data["access_days"],
            "review": data["review"],
            "dac": data.get("dac") or None,
        }


class AccessRequestForm(ConsentFields):
    statement = forms.CharField(
        max_length=5000,
        label="Research statement",
        help_text="What you will do with the data, and who will see it.",
        widget=forms.Textarea(attrs={"rows": 5}),
    )
    accept_terms = forms.BooleanField(
        label="I accept the data access terms: use only for the stated purpose, no attempt "
        "to re-identify anyone, no sharing of the files, deletion when access ends."
    )
    field_order = ["permission", "disease", "modifiers", "statement", "accept_terms"]

    def __init__(self, *args: Any, agreement: DataAccessAgreement | None = None, **kwargs: Any):
        """With the dataset's current data access agreement, the researcher must accept
        that exact version: its SHA-256 travels in a hidden field, so a version published
        while they read is refused rather than silently accepted (issue 19 §3)."""
        super().__init__(*args, **kwargs)
        add_agreement_fields(self, agreement)


def add_agreement_fields(form: forms.Form, agreement: DataAccessAgreement | None) -> None:
    """The hidden SHA-256 of the version shown and the box that accepts it, when the
    dataset asks for an agreement."""
    if agreement is None:
        return
    form.fields["agreement_sha256"] = forms.CharField(
        widget=forms.HiddenInput, initial=agreement.sha256, max_length=64
    )
    form.fields["accept_agreement"] = forms.BooleanField(
        label=f"I accept “{agreement.title}” (version {agreement.version}) as shown above."
    )


class RenewForm(forms.Form):
    statement = forms.CharField(
        max_length=5000,
        required=False,
        label="Why you need more time (optional)",
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args: Any, agreement: DataAccessAgreement | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        add_agreement_fields(self, agreement)


class RequestEditForm(ConsentFields):
    """A returned request, changed by its researcher before sending it again."""

    statement = AccessRequestForm.base_fields["statement"]
    field_order = ["permission", "disease", "modifiers", "statement"]


class VoteForm(forms.Form):
    vote = forms.ChoiceField(
        widget=forms.RadioSelect,
        choices=[("approve", "Approve"), ("reject", "Reject")],
        label="Your vote",
    )
    comment = forms.CharField(
        max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    expected_state = forms.CharField(max_length=16, required=False, widget=forms.HiddenInput)


class MessageForm(forms.Form):
    body = forms.CharField(
        max_length=4000, label="Message", widget=forms.Textarea(attrs={"rows": 3})
    )


class DacForm(forms.Form):
    """A committee and its policy (admins)."""

    name = forms.CharField(max_length=120)
    description = forms.CharField(
        max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    votes_needed = forms.IntegerField(
        min_value=0,
        max_value=20,
        initial=0,
        label="Member votes needed before the decision",
        help_text="0: one member decides alone.",
    )
    chair_decides = forms.BooleanField(required=False, label="The chair makes the final decision")


class DacMemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=[("member", "Member"), ("chair", "Chair")])


class DecisionForm(forms.Form):
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))
    # The state the page was rendered with: a decision on a request that moved on since
    # (another tab, another reviewer) is refused rather than overturning it.
    expected_state = forms.CharField(max_length=16, required=False, widget=forms.HiddenInput)


class RevokeForm(DecisionForm):
    block = forms.BooleanField(
        required=False,
        label="Revoked for misuse: block this researcher from the dataset",
        help_text="Their other requests for it end (unpaid ones closed, paid ones refunded) "
        "and new requests are refused, until you lift the block.",
    )


class DelistForm(forms.Form):
    reason = forms.CharField(
        max_length=2000,
        label="Why is it delisted?",
        help_text="The donor reads this, and so do the researchers whose requests close.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class Crypt4ghKeyForm(forms.Form):
    public_key = forms.CharField(
        required=False,
        label="Paste your public key",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text=(
            "The text of the .pub file crypt4gh-keygen wrote, or your SSH ed25519 public key "
            "(the ssh-ed25519 line of ~/.ssh/id_ed25519.pub). RSA and ECDSA keys do not work."
        ),
    )
    key_file = forms.FileField(required=False, label="…or upload the .pub file")

    def key_text(self) -> str:
        upload = self.cleaned_data.get("key_file")
        if upload is not None:
            return bytes(upload.read(4096)).decode("utf-8", "replace")
        return str(self.cleaned_data.get("public_key") or "")


class RecoveryCodeForm(forms.Form):
    recovery_code = forms.CharField(
        max_length=40,
        label="Recovery code",
        help_text="One of the codes you saved when you made them; each works once.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


class TokenForm(forms.Form):
    token = forms.RegexField(
        regex=r"^\d{6}$",
        label="Code from your authenticator app",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


class AttachmentForm(forms.Form):
    document = forms.FileField(
        label="Attach a PDF (e.g. your ethics approval letter)",
        help_text="PDF only, at most 10 MiB; up to 5 per request. Only the committee opens it.",
    )
