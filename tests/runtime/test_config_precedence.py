"""Configuration: explicit > environment > default; bad values name the variable."""

from __future__ import annotations

import attrs
import pytest

from sedna_core.config import (
    JobConfig,
    ServiceConfig,
    setting,
    to_bool,
    to_float,
    to_int,
    to_json,
    to_list,
    to_optional_str,
    to_port,
    to_positive_float,
    to_positive_int,
)
from sedna_core.errors import ConfigError


@attrs.frozen
class EdgeConfig(JobConfig):
    big_model_ip: str = setting("BIG_MODEL_IP", default="127.0.0.1")
    big_model_port: int = setting("BIG_MODEL_PORT", default=5000, convert=to_port)


@attrs.frozen
class AggConfig(ServiceConfig):
    host: str = setting("AGG_BIND_IP", default="127.0.0.1")
    port: int = setting("AGG_BIND_PORT", default=7363, convert=to_port)


def test_explicit_beats_env_beats_default() -> None:
    env = {"BIG_MODEL_IP": "10.0.0.5", "BIG_MODEL_PORT": "5001"}
    assert EdgeConfig.from_env({}).big_model_port == 5000
    assert EdgeConfig.from_env(env).big_model_port == 5001
    cfg = EdgeConfig.from_env(env, big_model_port=6000, big_model_ip=None)
    assert cfg.big_model_port == 6000 and cfg.big_model_ip == "10.0.0.5"  # None falls through


def test_reads_os_environ_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOB_NAME", "helmet")
    assert JobConfig.from_env().job_name == "helmet"
    monkeypatch.setenv("JOB_NAME", "other")
    assert JobConfig.from_env().job_name == "other"  # nothing cached at import


def test_sedna_lookup_rules() -> None:
    assert JobConfig.from_env({"JOB_NAME": ""}).job_name == "sedna"  # empty counts as unset
    assert JobConfig.from_env({"SERVICE_NAME": "svc"}).job_name == "svc"  # second name
    assert JobConfig.from_env({"JOB_NAME": "a", "SERVICE_NAME": "b"}).job_name == "a"
    assert JobConfig.from_env({"model_url": "/m"}).model_url == "/m"
    cfg = JobConfig.from_env({"lc_server": "http://lc:9100"})  # lower-case also found
    assert cfg.lc_server == "http://lc:9100"


def test_job_defaults_match_sedna() -> None:
    cfg = JobConfig.from_env({})
    assert cfg.job_name == "sedna" and cfg.worker == "sedna"
    assert cfg.lc_server is None  # reporting off unless LC_SERVER is set
    assert cfg.data_path_prefix == "/home/data" and cfg.model_load_mode == "file"
    assert cfg.model_poll_period == 60.0 and cfg.model_hot_update is False
    assert JobConfig.from_env({"WORKER_NAME": "w-0"}).worker == "w-0"


def test_service_defaults_are_secure() -> None:
    cfg = ServiceConfig.from_env({})
    assert cfg.host == "127.0.0.1" and cfg.token is None and cfg.insecure is False
    assert cfg.tls_cert is None and cfg.tls_key is None and cfg.max_request_size > 0
    agg = AggConfig.from_env({"AGG_BIND_PORT": "7000", "SEDNA_TOKEN": "t"})
    assert agg.port == 7000 and agg.token == "t" and agg.host == "127.0.0.1"
    assert AggConfig.env_names()["host"] == ("AGG_BIND_IP",)


@pytest.mark.parametrize(
    ("cls", "env", "value", "accepted"),
    [
        (EdgeConfig, "BIG_MODEL_PORT", "70000", "TCP port"),
        (EdgeConfig, "BIG_MODEL_PORT", "http", "TCP port"),
        (JobConfig, "MODEL_HOT_UPDATE", "maybe", "true/false"),
        (JobConfig, "MODEL_POLL_PERIOD_SECONDS", "-1", "greater than 0"),
        (JobConfig, "SEDNA_TIMEOUT", "soon", "number"),
        (ServiceConfig, "SEDNA_MAX_REQUEST_SIZE", "0", "integer greater than 0"),
        (ServiceConfig, "SEDNA_INSECURE", "si", "true/false"),
        (ServiceConfig, "SEDNA_SHUTDOWN_TIMEOUT", "nan", "greater than 0"),
    ],
)
def test_bad_env_value_names_variable_and_what_it_accepts(
    cls: type, env: str, value: str, accepted: str
) -> None:
    with pytest.raises(ConfigError) as info:
        cls.from_env({env: value})
    assert info.value.variable == env and info.value.value == value
    assert env in str(info.value) and accepted in str(info.value)


def test_explicit_strings_are_converted_like_env_values() -> None:
    assert EdgeConfig.from_env({}, big_model_port="5002").big_model_port == 5002
    assert ServiceConfig.from_env({}, insecure="yes").insecure is True
    with pytest.raises(ConfigError) as info:
        EdgeConfig.from_env({}, big_model_port="99999")
    assert info.value.variable == "big_model_port"


def test_unknown_explicit_setting_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="unknown setting"):
        JobConfig.from_env({}, job_nmae="typo")


def test_configs_are_frozen() -> None:
    cfg = JobConfig.from_env({})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        cfg.job_name = "x"  # type: ignore[misc]
    assert attrs.evolve(cfg, job_name="x").job_name == "x"


def test_converters() -> None:
    assert to_bool(" Yes ") is True and to_bool("off") is False
    assert to_int(" 7 ") == 7 and to_float("1.5") == 1.5
    assert to_positive_int("3") == 3 and to_positive_float("0.25") == 0.25
    assert to_port("0") == 0 and to_port("65535") == 65535
    assert to_list("a, b,,c ") == ("a", "b", "c")
    assert to_json('[{"key": "k", "value": "1"}]') == [{"key": "k", "value": "1"}]
    assert to_optional_str("") is None and to_optional_str("x") == "x"
    for fn, raw in [
        (to_bool, "2"),
        (to_positive_int, "0"),
        (to_positive_float, "inf-"),
        (to_port, "-1"),
        (to_json, "{"),
    ]:
        with pytest.raises(ValueError):
            fn(raw)


def test_every_env_name_is_documented() -> None:
    from pathlib import Path

    doc = Path(__file__).parents[2] / "docs" / "runtime.md"
    if not doc.exists():
        pytest.skip("docs/runtime.md not written yet")
    text = doc.read_text()
    names = {n for cls in (JobConfig, ServiceConfig) for ns in cls.env_names().values() for n in ns}
    missing = sorted(n for n in names if f"`{n}`" not in text)
    assert missing == []
