"""Method names are capped at `prompts.METHOD_NAME_MAX_BYTES`, so that the longest file name made of a method's name
and a prompt's slug (a sweep log's temporary) fits in a 255-byte file name; registering a longer one, as a built-in
would, a plug-in or a params.yaml variant, is an error naming the method, its length and the limit."""

import errno
import os

import pytest

from baselines import METHODS, Method, register, register_variants
from evaluation.figure import figure_path
from method.fileio import new_temporary, write_atomic
from prompts import FILE_NAME_MAX_BYTES, METHOD_NAME_MAX_BYTES, SLUG_MAX_BYTES, method_name_too_long, slugify

pytestmark = pytest.mark.usefixtures("registry")  # tests/conftest.py: what a test registers does not outlive it

LONGEST_SLUG = slugify("x" * 1000)
"""A cut slug of exactly SLUG_MAX_BYTES bytes (191 'x', '_', 8 hex digits)."""


def _temporary_name(path) -> str:
    """The name of the temporary that an atomic write of `path` creates (and removes it)."""
    fd, tmp = new_temporary(path)
    os.close(fd)
    tmp.unlink()
    return tmp.name


def test_the_longest_file_name_of_the_longest_method_and_slug_fits_exactly(tmp_path):
    assert len(LONGEST_SLUG.encode("utf-8")) == SLUG_MAX_BYTES and METHOD_NAME_MAX_BYTES == 32
    method = "m" * METHOD_NAME_MAX_BYTES
    register(Method(method, "the longest name allowed"))
    # a sweep's job `<method>-<slug>` and its log `<sweep dir>/<job>.out` (pipelines/sweep.py), written atomically
    # through `.<method>-<slug>.out.<12 hex>.tmp`: the longest name made of both, 255 bytes to the byte
    log = tmp_path / "sweep" / f"{method}-{LONGEST_SLUG}.out"
    log.parent.mkdir()
    longest = _temporary_name(log)
    assert len(longest.encode("utf-8")) == FILE_NAME_MAX_BYTES, longest
    write_atomic(log, lambda f: f.write(b"job log"))  # on disk: the temporary, then the log itself
    assert log.read_bytes() == b"job log" and os.listdir(log.parent) == [log.name]
    # the other names made of a slug are shorter: the figure's temporary, the artifact writer's folders
    others = [_temporary_name(figure_path(tmp_path, LONGEST_SLUG)), f".{LONGEST_SLUG}.tmp-{'0' * 12}",
              f".{LONGEST_SLUG}.old-{'x' * 8}"]
    assert all(len(n.encode("utf-8")) < len(longest.encode("utf-8")) for n in others), others
    # and one byte more of method name does not fit (where file names hold 255 bytes, as here on Linux)
    if os.pathconf(tmp_path, "PC_NAME_MAX") == FILE_NAME_MAX_BYTES:
        with pytest.raises(OSError) as err:
            new_temporary(tmp_path / "sweep" / f"{method}m-{LONGEST_SLUG}.out")
        assert err.value.errno == errno.ENAMETOOLONG


def test_a_longer_method_name_is_refused_with_its_length_and_the_limit():
    name = "m" * (METHOD_NAME_MAX_BYTES + 1)
    with pytest.raises(ValueError, match=rf"method name '{name}' is 33 bytes long \(UTF-8\), over the limit of 32: "
                                         r"with a prompt slug of up to 200 bytes .*choose a shorter name"):
        register(Method(name, "too long"))
    assert name not in METHODS
    # bytes, not characters: 16 two-byte letters fit the length, 17 do not (checked first); a method name is made of
    # ASCII letters, digits, '_' and '-' (baselines.registry.NAME_RULE), so the 16 are refused by that rule instead
    assert method_name_too_long("ü" * 16) is None
    with pytest.raises(ValueError, match="is 34 bytes long"):
        register(Method("ü" * 17, "34 bytes in 17 characters"))
    with pytest.raises(ValueError, match=r"^method name 'ü{16}' is not allowed: .*use ASCII letters, digits"):
        register(Method("ü" * 16, "32 bytes, not ASCII"))


def test_a_params_yaml_variant_with_a_longer_name_is_refused_naming_its_entry():
    name = "4dfy_video_sds_weight_0_3_long_x"  # 32 bytes: fine
    assert register_variants({name: {"base": "4dfy", "weights.sds_video": 0.3}}, source="my/params.yaml") == [name]
    longer = name + "y"
    with pytest.raises(ValueError, match=rf"^my/params.yaml: overrides.{longer}: method name '{longer}' is 33 bytes "
                                         r"long \(UTF-8\), over the limit of 32"):
        register_variants({longer: {"base": "4dfy", "weights.sds_video": 0.3}}, source="my/params.yaml")
    assert longer not in METHODS


class _EntryPoint:
    """What importlib.metadata gives for one `fourdfy.methods` entry point."""

    def __init__(self, name, obj):
        self.name, self.value, self.dist, self._obj = name, f"pkg:{name}", None, obj

    def load(self):
        return self._obj


def test_a_plugin_method_with_a_longer_name_is_a_broken_plugin(monkeypatch):
    from baselines import registry

    long_name = "a_plugin_method_with_a_long_name_"  # 33 bytes
    monkeypatch.setattr(registry.md, "entry_points", lambda group: [_EntryPoint("long", Method(long_name, "x"))])
    monkeypatch.setattr(registry, "_LOADED", set())
    monkeypatch.setattr(registry, "_ERRORS", {})
    monkeypatch.setattr(registry, "METHODS", dict(registry.METHODS))
    with pytest.raises(ValueError, match=rf"entry point 'long' of pkg:long: method name '{long_name}' is 33 bytes"):
        registry.load_entry_points()
    assert long_name not in registry.METHODS
