"""``client.__all__`` is what the package exports, as httpx's tests/test_exported_members.py
keeps it: every name in it importable, every public name of the package in it."""

from __future__ import annotations

import inspect
from types import ModuleType

import client
from client import errors


def test_every_name_in_all_is_importable() -> None:
    assert len(set(client.__all__)) == len(client.__all__), "a name is listed twice"
    # `from client import X` finds X as an attribute of the package (or a submodule of it).
    assert [name for name in client.__all__ if not hasattr(client, name)] == []


def test_every_public_name_of_the_package_is_in_all() -> None:
    # The submodules (client.api, client.errors, ...) become attributes of the package when
    # it imports from them; they are modules, not exported names.
    public = {
        name
        for name, value in vars(client).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    assert set(client.__all__) == public


def test_every_exception_of_the_tree_is_exported() -> None:
    # Callers catch what they can import from `client`: every class of the documented tree.
    tree = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, errors.ClassifierError)
    }
    assert tree <= set(client.__all__)
