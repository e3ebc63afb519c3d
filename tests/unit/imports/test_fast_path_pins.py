"""The import's fast path (``imports.fast``) repeats the rules of three schemas for plainly
valid rows. A change to a schema's fields, types or limits must be carried into the fast
path too, or the fast path would accept what the schema refuses: this test pins what the
fast path was written against and fails on any change, naming the schema."""

from __future__ import annotations

import hashlib
import json

import pytest
from pydantic import BaseModel

from guanxi.customers.schemas import AddressIn, CustomerCreate
from guanxi.shipments.schemas import ShipmentCreate

# (schema, fingerprint of its JSON schema, its model validators) as imports/fast.py knows them.
PINNED: list[tuple[type[BaseModel], str, list[str]]] = [
    (CustomerCreate, "8f3227f7c507e3a9", ["_identifier_fits_kind"]),
    (AddressIn, "1886e58139c68179", ["_some_content"]),
    (ShipmentCreate, "7681b149527e3f98", []),
]


def _fingerprint(model: type[BaseModel]) -> str:
    text = json.dumps(model.model_json_schema(), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@pytest.mark.parametrize(
    ("model", "fingerprint", "validators"), PINNED, ids=[m.__name__ for m, _f, _v in PINNED]
)
def test_the_fast_path_knows_the_schema_as_it_is(
    model: type[BaseModel], fingerprint: str, validators: list[str]
) -> None:
    message = (
        f"{model.__name__} changed: make imports/fast.py apply the same rules (its test "
        "tests/integration/imports/test_fast_path.py compares both paths), then update PINNED"
    )
    assert _fingerprint(model) == fingerprint, message
    assert sorted(model.__pydantic_decorators__.model_validators) == validators, message
