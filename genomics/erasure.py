"""Finding and destroying everything derived from stored files (issue 19 §5, GDPR Art. 17).

Generic over what hangs off a file, so objects other modules add (encrypted indexes,
recompressed copies, region-tier objects, variant-index rows) are covered without special
cases, by two conventions (common design decision of issue 19):

- a derived row reaches its file by a foreign key (CASCADE, or PROTECT like grants), maybe
  through other derived rows; `derived_rows` follows every such relation from the files
  (SET_NULL and DO_NOTHING relations are references, not derived data, and are not
  followed);
- a storage object's name is recorded in a row, in a field named `storage_name`,
  `storage_key` or ending in `_storage_name` / `_storage_key` (one object, or a folder of
  them), or `payload_key` / ending in `_payload_key` (the payload folder
  `payloads/<key>/`, genomics.payloads). `STORAGE_FIELDS` registers any other field name.

Secret material (what opens a payload) is found the same way: binary fields named `header`
or ending in `_header`, and `wrapped_data_key` (`SECRET_FIELDS` registers others). They
are destroyed first, in their own transaction (crypto-shredding: with every header gone no
key opens the payload), before any storage object or row is deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.core.files.storage import default_storage
from django.db import models
from django.db.models.deletion import ProtectedError

from genomics.models import GenomicFile

# "app_label.Model" -> field names holding storage names, for fields the naming
# convention does not catch. The lead registers other branches' fields here at merge if
# they chose other names.
STORAGE_FIELDS: dict[str, tuple[str, ...]] = {}
# "app_label.Model" -> binary field names holding keys or headers, beyond the convention.
SECRET_FIELDS: dict[str, tuple[str, ...]] = {}

_FOLLOWED = (models.CASCADE, models.PROTECT)


@dataclass
class DerivedRows:
    """Rows derived from some files, by model, with how deep each model sits (files: 0),
    so rows can be deleted children first."""

    by_model: dict[type[models.Model], set[object]] = field(default_factory=dict)
    depth: dict[type[models.Model], int] = field(default_factory=dict)

    def add(self, model: type[models.Model], pks: Iterable[object], depth: int) -> set[object]:
        known = self.by_model.setdefault(model, set())
        new = set(pks) - known
        known |= new
        self.depth[model] = max(self.depth.get(model, 0), depth)
        return new

    def tables(self) -> list[str]:
        return sorted({m._meta.db_table for m in self.by_model})

    def count(self) -> int:
        return sum(len(pks) for pks in self.by_model.values())


def _label(model: type[models.Model]) -> str:
    return model._meta.label


def derived_rows(file_ids: Sequence[object]) -> DerivedRows:
    """The files and every row that hangs off them by CASCADE or PROTECT foreign keys,
    followed recursively (a region-tier object is itself a file row with its own parts,
    grants and indexes)."""
    rows = DerivedRows()
    frontier: list[tuple[type[models.Model], set[object], int]] = [
        (GenomicFile, rows.add(GenomicFile, file_ids, 0), 0)
    ]
    while frontier:
        model, pks, depth = frontier.pop()
        if not pks:
            continue
        for relation in model._meta.related_objects:
            if relation.many_to_many or relation.on_delete not in _FOLLOWED:
                continue
            related = relation.related_model
            assert isinstance(related, type)
            found = related._default_manager.filter(**{f"{relation.field.name}__in": pks})
            new = rows.add(related, found.values_list("pk", flat=True), depth + 1)
            frontier.append((related, new, depth + 1))
    return rows


def _storage_fields(model: type[models.Model]) -> list[tuple[str, bool]]:
    """(field name, is a payload key) of the fields that name storage objects."""
    registered = set(STORAGE_FIELDS.get(_label(model), ()))
    found = []
    for f in model._meta.concrete_fields:
        name = f.name
        if name == "payload_key" or name.endswith("_payload_key"):
            found.append((name, True))
        elif (
            name in registered
            or name in ("storage_name", "storage_key")
            or name.endswith(("_storage_name", "_storage_key"))
        ):
            found.append((name, False))
    return found


def secret_fields(model: type[models.Model]) -> list[models.Field]:
    registered = set(SECRET_FIELDS.get(_label(model), ()))
    return [
        f
        for f in model._meta.concrete_fields
        if isinstance(f, models.BinaryField)
        and (
            f.name in registered
            or f.name == "header"
            or f.name.endswith("_header")
            or f.name == "wrapped_data_key"
        )
    ]


def storage_names(rows: DerivedRows) -> list[str]:
    """Every storage object or folder the rows name (payload keys as their folder)."""
    names: set[str] = set()
    for model, pks in rows.by_model.items():
        fields = _storage_fields(model)
        if not fields or not pks:
            continue
        for values in model._default_manager.filter(pk__in=pks).values_list(
            *[name for name, _ in fields]
        ):
            for (_, is_payload), value in zip(fields, values, strict=True):
                if value:
                    names.add(f"payloads/{value}" if is_payload else str(value))
    return sorted(names)


def secrets_destroy(rows: DerivedRows) -> int:
    """Destroy every header and wrapped key among the rows: a row that is only secret
    material (a grant, an upload's state) is deleted, a nullable field set to NULL, any
    other emptied. Returns how many values were destroyed. Run in its own transaction,
    before any storage object goes."""
    destroyed = 0
    for model in sorted(rows.by_model, key=lambda m: -rows.depth[m]):
        pks = rows.by_model[model]
        secret = secret_fields(model)
        if not secret or not pks:
            continue
        queryset = model._default_manager.filter(pk__in=pks)
        names = [f.name for f in secret]
        destroyed += sum(
            1 for values in queryset.values_list(*names) for value in values if value is not None
        )
        if model is not GenomicFile and rows.depth[model] > 0:
            try:
                queryset.delete()
                rows.by_model[model] = set()
                continue
            except ProtectedError:
                pass  # something still needs the row: empty its secrets instead
        queryset.update(**{f.name: (None if f.null else b"") for f in secret})
    return destroyed


def storage_delete(names: Iterable[str]) -> int:
    """Delete each named object, or every object under it when it is a folder (S3 has no
    folders: `listdir` lists the prefix). Idempotent. Returns how many objects went."""
    deleted = 0
    for name in names:
        deleted += _delete_tree(name.rstrip("/"))
    return deleted


def _delete_tree(name: str) -> int:
    deleted = 0
    try:
        folders, files = default_storage.listdir(name)
    except (FileNotFoundError, NotADirectoryError, OSError):
        folders, files = [], []
    for child in files:
        default_storage.delete(f"{name}/{child}")
        deleted += 1
    for folder in folders:
        deleted += _delete_tree(f"{name}/{folder}")
    if default_storage.exists(name):
        try:
            default_storage.delete(name)
            deleted += 1
        except (IsADirectoryError, OSError):
            pass  # an empty local folder: nothing of the donor's is in it
    return deleted


def rows_delete(rows: DerivedRows) -> dict[str, int]:
    """Delete the rows children first (PROTECT relations such as grants would refuse the
    files' deletion), then the files; CASCADE removes whatever else hangs off them.
    Returns rows deleted per table."""
    counts: dict[str, int] = {}
    for model in sorted(rows.by_model, key=lambda m: -rows.depth[m]):
        pks = rows.by_model[model]
        if not pks:
            continue
        _, per_model = model._default_manager.filter(pk__in=pks).delete()
        for label, n in per_model.items():
            if n:
                table = _table_of(label)
                counts[table] = counts.get(table, 0) + n
    return counts


def _table_of(label: str) -> str:
    from django.apps import apps

    try:
        return apps.get_model(label)._meta.db_table
    except (LookupError, ValueError):
        return label


def names_kept_by_others(
    names: Sequence[str], rows: DerivedRows, *, ignore: Sequence[type[models.Model]] = ()
) -> set[str]:
    """The names (of `names`) that a row outside `rows` (and outside the `ignore` models:
    the erasure's own record of what to delete) still records, itself or inside it: never
    deleted. A row is a request for work, not a proof (RELIABILITY.md 23): a part
    row the web tier wrote under an erased file, naming another donor's object, must not
    make the worker delete that object."""
    from django.apps import apps

    wanted = set(names)
    kept: set[str] = set()
    for model in apps.get_models():
        if model in ignore:
            continue
        for name, is_payload in _storage_fields(model):
            others = model._default_manager.exclude(pk__in=rows.by_model.get(model, set()))
            if is_payload:
                keys = [n.removeprefix("payloads/") for n in wanted if n.startswith("payloads/")]
                hits = others.filter(**{f"{name}__in": keys}).values_list(name, flat=True)
                kept |= {f"payloads/{key}" for key in hits}
                continue
            kept |= set(others.filter(**{f"{name}__in": wanted}).values_list(name, flat=True))
            for folder in wanted:
                if others.filter(**{f"{name}__startswith": f"{folder}/"}).exists():
                    kept.add(folder)
    return kept
