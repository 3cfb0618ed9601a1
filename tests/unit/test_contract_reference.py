"""docs/contract.md's generated reference (kit/reference.py) is current: every HTTP function with its callers, method,
fields, reply and errors, every other function of the manifest, every Firestore document and push payload."""

from __future__ import annotations

from functions.manifest import FUNCTIONS
from kit import contract, reference


def test_the_generated_reference_in_contract_md_is_current() -> None:
    text = reference.CONTRACT_MD.read_text()
    assert reference.BEGIN in text, "run `make contract`"
    assert reference.current(text, reference.markdown()) == text, "docs/contract.md is not current: run `make contract`"


def test_it_names_every_function_document_and_push() -> None:
    section = reference.markdown()
    for spec in FUNCTIONS:
        assert f"`{spec.name}`" in section, spec.name
    for relative, schema in contract.schemas().items():
        assert f"(../contract/{relative})" in section, relative
        if relative.startswith("firestore/"):
            assert f"#### `{schema['x-firestore-path']}`" in section


def test_replacing_the_section_keeps_what_surrounds_it() -> None:
    text = f"# Title\n\nBefore.\n\n{reference.BEGIN}\nold\n{reference.END}\nAfter.\n"
    assert (
        reference.current(text, "new\n") == f"# Title\n\nBefore.\n\n{reference.BEGIN}\nnew\n{reference.END}\nAfter.\n"
    )
    assert reference.current("# Title\n", "new\n") == f"# Title\n\n{reference.BEGIN}\nnew\n{reference.END}\n"
