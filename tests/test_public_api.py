"""The public face: `cowaitlib.__all__` is complete and exact."""

import types

import cowaitlib


def test_all_lists_every_public_name_and_only_those() -> None:
    public = {
        name
        for name in dir(cowaitlib)  # dir(): the lazily imported names too
        if not name.startswith("_")
        and not isinstance(getattr(cowaitlib, name), types.ModuleType)
        and name != "TYPE_CHECKING"
    }
    assert public == set(cowaitlib.__all__) - {"__version__"}
    for name in cowaitlib.__all__:
        assert hasattr(cowaitlib, name), name


def test_every_error_derives_from_the_root() -> None:
    errors = [getattr(cowaitlib, n) for n in cowaitlib.__all__ if n.endswith("Error")]
    assert errors, "no errors exported"
    for error in errors:
        assert issubclass(error, cowaitlib.CowaitError), error
    # exit() is a signal, not an error: a user's `except Exception` must not swallow it.
    assert not issubclass(cowaitlib.TaskExit, Exception)
    assert cowaitlib.ExecutorUnavailable.__mro__[1] is cowaitlib.CowaitError
