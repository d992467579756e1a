"""mesh.session: the active session is reused; the native Delta path only with its jars."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from mesh.session import (
    DELTA_EXTENSION,
    LOG4J_CONFIG,
    _delta_jars_available,
    _LazySession,
    get_spark,
    is_connect,
    lazy_spark,
    native_delta_enabled,
    quiet_local_session,
)

SHUFFLE = "spark.sql.shuffle.partitions"


def test_get_spark_returns_the_active_session(spark: Any) -> None:
    assert get_spark() is spark
    assert get_spark(master="local[1]") is spark  # an active session wins over arguments


def test_another_thread_gets_the_session_as_it_is(spark: Any) -> None:
    # A thread pool in a notebook: no session is active in the new thread, but the
    # notebook's exists; a builder's getOrCreate would apply get_spark's settings to it.
    before = {k: spark.conf.get(k) for k in ("spark.sql.session.timeZone", SHUFFLE)}
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    spark.conf.set(SHUFFLE, "3")
    found: dict[str, Any] = {}

    def worker() -> None:
        from pyspark.sql import SparkSession

        found["active"] = SparkSession.getActiveSession()
        found["get_spark"] = get_spark()
        found["lazy_spark"] = lazy_spark()

    try:
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        zone, partitions = spark.conf.get("spark.sql.session.timeZone"), spark.conf.get(SHUFFLE)
    finally:
        for key, value in before.items():
            spark.conf.set(key, value)
    assert found["active"] is None  # what made the difference
    assert found["get_spark"] is spark and found["lazy_spark"] is spark
    assert (zone, partitions) == ("America/New_York", "3")


def test_native_delta_is_off_in_the_test_session(spark: Any) -> None:
    assert DELTA_EXTENSION not in (spark.conf.get("spark.sql.extensions", "") or "")
    assert native_delta_enabled(spark) is False


def test_a_lazy_session_is_made_only_where_a_new_session_would_be_local_without_delta(
    spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyspark.sql import SparkSession

    import mesh.session as session_module

    assert lazy_spark() is spark  # an active session is used as is
    monkeypatch.setattr(SparkSession, "getActiveSession", staticmethod(lambda: None))
    monkeypatch.setattr(SparkSession, "_instantiatedSession", None)
    monkeypatch.setattr(session_module, "get_spark", lambda app_name="": "started")
    for name in ("SPARK_REMOTE", "PYSPARK_GATEWAY_PORT", "DATABRICKS_RUNTIME_VERSION"):
        monkeypatch.delenv(name, raising=False)
    for name in ("SPARK_API_MODE", "MESH_DELTA_JARS", "PYSPARK_SUBMIT_ARGS", "SPARK_CLASSPATH"):
        monkeypatch.delenv(name, raising=False)
    lazy = lazy_spark("app")
    assert isinstance(lazy, _LazySession) and not lazy.started
    for name, value in (
        ("SPARK_REMOTE", "sc://host"),
        ("PYSPARK_GATEWAY_PORT", "4040"),
        ("DATABRICKS_RUNTIME_VERSION", "17.3"),
        ("SPARK_API_MODE", "connect"),
        ("MESH_DELTA_JARS", "/jars/delta-spark.jar"),
    ):
        with monkeypatch.context() as scoped:
            scoped.setenv(name, value)
            assert lazy_spark("app") == "started", name


def test_a_lazy_session_decides_the_backend_unstarted_and_starts_on_first_use(spark: Any) -> None:
    lazy = _LazySession("app")
    assert native_delta_enabled(lazy) is False  # the session it would start has no Delta
    assert not lazy.started
    assert lazy.conf.get("spark.sql.session.timeZone") == "UTC"
    assert lazy.started
    assert lazy.range(3).count() == 3
    assert native_delta_enabled(lazy) is native_delta_enabled(spark)


class _Conf:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def _connect_session(extensions: str) -> Any:
    """A stand-in with a Connect session's module and conf (and no SparkContext)."""
    cls = type("SparkSession", (), {"__module__": "pyspark.sql.connect.session"})
    session = cls()
    session.conf = _Conf({"spark.sql.extensions": extensions})
    return session


def test_native_delta_on_connect_and_databricks(
    spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Connect session's classes are on the server: the configured extension is taken as
    loaded; Databricks has Delta built in, whatever the conf says."""
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    assert is_connect(spark) is False
    assert is_connect(_connect_session("")) is True
    assert native_delta_enabled(_connect_session(DELTA_EXTENSION)) is True
    assert native_delta_enabled(_connect_session("other.Extension")) is False
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "17.3")
    assert native_delta_enabled(spark) is True
    assert native_delta_enabled(_connect_session("")) is True


def test_spark_remote_connects_with_only_the_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """``SPARK_REMOTE``: no master, memory or partitions of ours; the session is UTC."""
    from pyspark.sql import SparkSession

    calls: list[tuple[str, Any]] = []

    class Builder:
        def appName(self, name: str) -> Builder:
            calls.append(("appName", name))
            return self

        def config(self, key: str, value: str) -> Builder:
            calls.append((key, value))
            return self

        def master(self, url: str) -> Builder:
            calls.append(("master", url))
            return self

        def getOrCreate(self) -> str:
            return "remote session"

    monkeypatch.setattr(SparkSession, "getActiveSession", staticmethod(lambda: None))
    monkeypatch.setattr(SparkSession, "_instantiatedSession", None)
    monkeypatch.setattr(SparkSession, "builder", Builder())
    monkeypatch.setenv("SPARK_REMOTE", "sc://example:15002")
    assert get_spark("app") == "remote session"
    assert calls == [("appName", "app"), ("spark.sql.session.timeZone", "UTC")]


def test_a_local_connect_server_starts_without_warnings_on_its_launch_settings(
    spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``SPARK_API_MODE=connect``: the server is launched with the UI, progress and memory
    settings; the client then sets them again, which Spark refuses with a warning each."""
    import warnings

    from pyspark.sql import SparkSession

    class Builder:
        def __getattr__(self, name: str) -> Any:
            return lambda *args: self

        def getOrCreate(self) -> Any:
            for key in (
                "spark.ui.enabled",
                "spark.ui.showConsoleProgress",
                "spark.driver.memory",
                "spark.driver.extraJavaOptions",
            ):
                message = f"Failed to set {key} to Some(false) due to [CANNOT_MODIFY_CONFIG]"
                warnings.warn(message, stacklevel=1)
            warnings.warn("Failed to set spark.sql.shuffle.partitions to Some(4)", stacklevel=1)
            return spark

    monkeypatch.setattr(SparkSession, "getActiveSession", staticmethod(lambda: None))
    monkeypatch.setattr(SparkSession, "_instantiatedSession", None)
    monkeypatch.setattr(SparkSession, "builder", Builder())
    monkeypatch.setattr("mesh.session._delta_jars_available", lambda: False)
    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert get_spark("app") is spark
    # Any other refused setting still warns.
    assert [str(w.message).split(" to Some")[0] for w in caught] == [
        "Failed to set spark.sql.shuffle.partitions"
    ]


def test_delta_jars_are_detected_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MESH_DELTA_JARS", "PYSPARK_SUBMIT_ARGS", "SPARK_CLASSPATH"):
        monkeypatch.delenv(name, raising=False)
    assert _delta_jars_available() is False
    monkeypatch.setenv(
        "PYSPARK_SUBMIT_ARGS", "--jars /opt/delta-spark_2.13-4.0.0.jar pyspark-shell"
    )
    assert _delta_jars_available() is True


def _delta_jars() -> list[str]:
    found = os.environ.get("MESH_DELTA_JARS", "")
    jars = [j for j in found.split(",") if j] if found else []
    home = Path.home()
    for pattern in (".ivy2*/jars/io.delta_delta-*.jar", ".m2/repository/io/delta/**/*.jar"):
        jars += glob.glob(str(home / pattern), recursive=True)
    return jars


@pytest.mark.native
def test_native_path_enables_the_delta_extension() -> None:
    jars = _delta_jars()
    if not jars:
        pytest.skip(
            "Delta Lake jars are not on this machine (no MESH_DELTA_JARS, none in the "
            "ivy/maven caches); the native backend needs io.delta:delta-spark_2.13"
        )
    # A second session cannot share this JVM with the fixture's: check in a fresh process.
    code = (
        "from mesh.session import get_spark, native_delta_enabled; "
        "s = get_spark(master='local[1]'); print(native_delta_enabled(s)); s.stop()"
    )
    env = {
        **os.environ,
        "MESH_DELTA_JARS": ",".join(jars),
        "PYSPARK_SUBMIT_ARGS": f"--jars {','.join(jars)} pyspark-shell",
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "True"


def test_a_sigint_handler_that_asks_is_kept_over_sparks() -> None:
    """PySpark's SparkContext installs its own SIGINT handler; ``mesh``'s is put back."""
    from mesh.cli.interrupt import SigintHandler
    from mesh.session import _sigint_handler_kept

    def sparks(signum: int, frame: Any) -> None:  # what SparkContext installs
        raise KeyboardInterrupt

    original = signal.getsignal(signal.SIGINT)
    ours = SigintHandler()
    try:
        signal.signal(signal.SIGINT, ours)
        with _sigint_handler_kept():
            signal.signal(signal.SIGINT, sparks)
        assert signal.getsignal(signal.SIGINT) is ours
        signal.signal(signal.SIGINT, signal.default_int_handler)  # not marked: Spark's stays
        with _sigint_handler_kept():
            signal.signal(signal.SIGINT, sparks)
        assert signal.getsignal(signal.SIGINT) is sparks
    finally:
        signal.signal(signal.SIGINT, original)


def _local_builder_options(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The settings ``get_spark`` gives a new local classic session, and the level it then
    sets, as ``"level"`` (no session starts)."""
    from pyspark.sql import SparkSession

    settings: dict[str, str] = {}

    class Context:
        def setLogLevel(self, level: str) -> None:
            settings["level"] = level

    class Session:
        sparkContext = Context()

    class Builder:
        def config(self, key: str, value: str) -> Any:
            settings[key] = value
            return self

        def __getattr__(self, name: str) -> Any:
            return lambda *args: self

        def getOrCreate(self) -> Any:
            return Session()

    monkeypatch.setattr(SparkSession, "getActiveSession", staticmethod(lambda: None))
    monkeypatch.setattr(SparkSession, "_instantiatedSession", None)
    monkeypatch.setattr(SparkSession, "builder", Builder())
    for name in ("SPARK_REMOTE", "PYSPARK_GATEWAY_PORT", "SPARK_API_MODE"):
        monkeypatch.delenv(name, raising=False)
    get_spark("app")
    return settings


LOG4J_OPTION = f'-Dlog4j2.configurationFile="{LOG4J_CONFIG}"'


def test_a_local_session_starts_its_logging_at_its_level(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("MESH_SPARK_LOG_LEVEL", "MESH_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))  # no log4j configuration of the user's
    assert Path(LOG4J_CONFIG).is_file()
    options = _local_builder_options(monkeypatch)
    java = f"{LOG4J_OPTION} -Dmesh.spark.log.level=error"
    assert (options["spark.driver.extraJavaOptions"], options["level"]) == (java, "ERROR")

    with quiet_local_session():  # the mesh command's own session: its one message only
        options = _local_builder_options(monkeypatch)
    java = f"{LOG4J_OPTION} -Dmesh.spark.log.level=fatal"
    assert (options["spark.driver.extraJavaOptions"], options["level"]) == (java, "FATAL")

    for name, value, level in (
        ("MESH_DEBUG", "1", "ERROR"),
        ("MESH_SPARK_LOG_LEVEL", "WARN", "WARN"),
    ):
        with monkeypatch.context() as env, quiet_local_session():
            env.setenv(name, value)
            options = _local_builder_options(env)
        assert options["level"] == level, name
        assert options["spark.driver.extraJavaOptions"].endswith(f"level={level.lower()}")


@pytest.mark.parametrize(
    ("variable", "value", "file"),
    [
        ("SPARK_SUBMIT_OPTS", "-Dlog4j2.configurationFile=/etc/mine.properties", None),
        ("PYSPARK_SUBMIT_ARGS", "--driver-java-options -Xss4m pyspark-shell", None),
        (None, None, "log4j2.properties"),
        (None, None, "spark-defaults.conf"),
    ],
)
def test_a_log4j_configuration_of_the_users_is_kept(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    variable: str | None,
    value: str | None,
    file: str | None,
) -> None:
    for name in ("MESH_SPARK_LOG_LEVEL", "MESH_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    if variable and value:
        monkeypatch.setenv(variable, value)
    if file:
        (tmp_path / file).write_text("spark.driver.extraJavaOptions -Xss4m\n")
    with quiet_local_session():
        options = _local_builder_options(monkeypatch)
    assert "spark.driver.extraJavaOptions" not in options
    assert options["level"] == "FATAL"  # set once started, as before
