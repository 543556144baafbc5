"""Installed plug-ins as the registry meets them: a real distribution on sys.path (`install_plugin`), or one entry
point as importlib.metadata gives it (`FakeEntryPoint`)."""

from __future__ import annotations

import sys


def install_plugin(tmp_path, monkeypatch, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """Install distribution `dist` (its entry points under `fourdfy.methods`, its modules' sources) into a folder
    of its own on sys.path, as `pip install --target` leaves it. Module names are the test's own: a module imported
    by one test is not another's."""
    site = tmp_path / f"site_{dist}"
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[fourdfy.methods]\n" + "".join(f"{k} = {v}\n"
                                                                          for k, v in entry_points.items()))
    for module, source in modules.items():
        (site / f"{module}.py").write_text(source)
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.syspath_prepend(str(site))


class FakeEntryPoint:
    """What importlib.metadata gives for one `fourdfy.methods` entry point of the distribution my-plugin."""

    class _Dist:
        name = "my-plugin"

    def __init__(self, name, obj):
        self.name, self.value, self.dist, self._obj = name, f"my_plugin:{name}", self._Dist(), obj

    def load(self):
        return self._obj
