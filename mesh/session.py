"""Spark sessions: the active one (notebooks, spark-submit) or a local one for laptops and tests."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"


def get_spark(app_name: str = "feature-mesh", master: str | None = None) -> SparkSession:
    """Return the active session if there is one (Databricks, a notebook), else a new one.

    An active session is returned as it is. Under spark-submit the new session is the one its
    command line configures (master, ``--name``, ``--conf``); on a ``local`` master it also
    gets the local session's shuffle partitions, unless the command line sets them, and log
    level. A job must therefore leave starting the session to this function: one it started
    itself is returned unchanged (on a local master: Spark's 200 partitions, INFO logging).

    The local session runs ``local[*]`` (or ``MESH_SPARK_MASTER``), UTC session time zone,
    shuffle partitions sized for the machine, UI off. When the Delta Lake jars are on the
    classpath the Delta extension is enabled so the native storage backend can be used.
    """
    from pyspark.sql import SparkSession

    _silence_query_context()
    active = _existing_session()
    if active is not None:
        return active
    if os.environ.get("SPARK_REMOTE"):
        # A Spark Connect server (a cluster's endpoint, Databricks Connect): its own master,
        # memory and partitions; only the session's time zone is the engine's.
        builder = SparkSession.builder.appName(app_name)
        return builder.config("spark.sql.session.timeZone", "UTC").getOrCreate()
    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        # Launched by spark-submit: master, memory, packages and the application's name
        # (``--name``) come from its command line.
        with _sigint_handler_kept():
            return _submitted(SparkSession.builder.getOrCreate())
    master = master or os.environ.get("MESH_SPARK_MASTER", "local[*]")
    # Python workers (the window kernel) must see the same packages as this interpreter.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.appName(app_name)
        .master(master)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", _local_partitions())
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.driver.memory", os.environ.get("MESH_DRIVER_MEMORY", "4g"))
    )
    level = _local_log_level()
    if not _own_log4j():
        # The JVM starts at the session's level (not Spark's INFO/WARN start-up lines).
        builder = builder.config("spark.driver.extraJavaOptions", log4j_options(level))
    if _delta_jars_available():
        builder = builder.config("spark.sql.extensions", DELTA_EXTENSION).config(
            "spark.sql.catalog.spark_catalog", DELTA_CATALOG
        )
    with _sigint_handler_kept(), warnings.catch_warnings():
        # SPARK_API_MODE=connect: the local server starts with these settings, then the
        # client sets them again as session settings, which Spark refuses with a warning.
        warnings.filterwarnings("ignore", _LAUNCH_ONLY, UserWarning)
        spark = builder.getOrCreate()
    if not is_connect(spark):  # SPARK_API_MODE=connect: a local Spark Connect server
        spark.sparkContext.setLogLevel(level)
    return spark


_LAUNCH_ONLY = (
    r"Failed to set spark\.(ui\.enabled|ui\.showConsoleProgress|driver\.memory"
    r"|driver\.extraJavaOptions) "
)
# Spark's driver logging on a local master, at -Dmesh.spark.log.level (package data, also
# used by spark-submit.sh).
LOG4J_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "log4j2.properties")
LOG4J_FILES = ("log4j2.properties", "log4j2.xml", "log4j2.yaml", "log4j2.yml", "log4j2.json")


class _Quiet:
    """Set while the ``mesh`` command runs (``quiet_local_session``)."""

    on = False
    silenced: list[logging.Logger] = []  # loggers turned off meanwhile, back on after


_quiet = _Quiet()
# PySpark's loggers of a failed query's context (its Java and Python stacks, as JSON).
QUERY_CONTEXT_LOGGERS = ("DataFrameQueryContextLogger", "SQLQueryContextLogger")


@contextmanager
def quiet_local_session() -> Iterator[None]:
    """A local session started meanwhile logs only FATAL, from start-up on, and PySpark's
    query-context loggers are off once a session is asked for (``get_spark``), until the end.

    For the ``mesh`` command, which reports a failure as one message of its own: Spark's
    ERROR logs of the same failure (a failed task's stack, the aborted job) only repeat it.
    ``MESH_DEBUG`` or ``MESH_SPARK_LOG_LEVEL`` keeps Spark's level (ERROR, or the one set) and
    those loggers. A session that exists already, spark-submit's and Spark Connect's keep
    their level. A command that never asks for a session never imports PySpark here.
    """
    before, silenced = _quiet.on, _quiet.silenced
    _quiet.on, _quiet.silenced = True, []
    try:
        yield
    finally:
        for logger in _quiet.silenced:
            logger.disabled = False
        _quiet.on, _quiet.silenced = before, silenced


def _silence_query_context() -> None:
    """Inside ``quiet_local_session`` (no ``MESH_DEBUG``, no ``MESH_SPARK_LOG_LEVEL``): PySpark's
    query-context loggers off until it ends."""
    if not _quiet.on or os.environ.get("MESH_DEBUG") or os.environ.get("MESH_SPARK_LOG_LEVEL"):
        return
    _quiet.silenced += silence(QUERY_CONTEXT_LOGGERS)


def silence(names: tuple[str, ...]) -> list[logging.Logger]:
    """Turn off the loggers of ``names`` (``pyspark_loggers``); return those this turned off,
    for the caller to turn back on (one already off stays the business of whoever did it)."""
    turned_off = [logger for logger in pyspark_loggers(names) if not logger.disabled]
    for logger in turned_off:
        logger.disabled = True
    return turned_off


def pyspark_loggers(names: tuple[str, ...]) -> list[logging.Logger]:
    """The loggers of ``names``; one not created yet is created as PySpark's own class.

    PySpark asks for its query-context loggers with ``PySparkLogger.getLogger``, which returns
    an existing logger of that name as it is: a plain ``Logger`` made by
    ``logging.getLogger`` would then refuse PySpark's ``exception(..., errorClass=...)``
    (``TypeError``) for the rest of the process.
    """
    try:
        from pyspark.logger import PySparkLogger
    except ImportError:  # no PySpark: only loggers that exist, none created
        found = (logging.Logger.manager.loggerDict.get(name) for name in names)
        return [logger for logger in found if isinstance(logger, logging.Logger)]
    return [PySparkLogger.getLogger(name) for name in names]


def _local_log_level() -> str:
    """``MESH_SPARK_LOG_LEVEL``, else FATAL inside ``quiet_local_session`` (no ``MESH_DEBUG``),
    else ERROR."""
    given = os.environ.get("MESH_SPARK_LOG_LEVEL")
    if given:
        return given
    return "FATAL" if _quiet.on and not os.environ.get("MESH_DEBUG") else "ERROR"


def log4j_options(level: str) -> str:
    """Driver JVM options that start Spark's logging from ``LOG4J_CONFIG`` at ``level``."""
    path = LOG4J_CONFIG.replace("\\", "\\\\").replace('"', '\\"')
    return f'-Dlog4j2.configurationFile="{path}" -Dmesh.spark.log.level={level.lower()}'


def _own_log4j() -> bool:
    """Whether a log4j configuration of the user's (or driver JVM options) is in use: Java
    options naming one, ``spark.driver.extraJavaOptions`` set, a ``log4j2.*`` file in Spark's
    conf folder."""
    options = " ".join(
        os.environ.get(v, "")
        for v in (
            "PYSPARK_SUBMIT_ARGS",
            "SPARK_SUBMIT_OPTS",
            "JDK_JAVA_OPTIONS",
            "JAVA_TOOL_OPTIONS",
        )
    )
    if "log4j" in options or "extraJavaOptions" in options or "driver-java-options" in options:
        return True
    home = os.environ.get("SPARK_HOME")
    folder = os.environ.get("SPARK_CONF_DIR") or (os.path.join(home, "conf") if home else "")
    if not folder:
        return False
    if any(os.path.isfile(os.path.join(folder, name)) for name in LOG4J_FILES):
        return True
    defaults = os.path.join(folder, "spark-defaults.conf")
    if os.path.isfile(defaults):
        with open(defaults, encoding="utf-8", errors="replace") as file:
            text = file.read()
        return "log4j" in text or "spark.driver.extraJavaOptions" in text
    return False


def _local_partitions() -> str:
    """Shuffle partitions for one machine: Spark's 200 make hundreds of tiny tasks a stage."""
    return str(max(4, (os.cpu_count() or 2) * 2))


def _submitted(spark: SparkSession) -> SparkSession:
    """A session spark-submit configured: on a ``local`` master, the local session's shuffle
    partitions and log level unless its command line set them; on a cluster, as it is, but
    for ``MESH_SPARK_LOG_LEVEL`` when set."""
    conf = spark.sparkContext.getConf()  # spark-submit's --master and --conf
    local = conf.get("spark.master", "").startswith("local")
    if local and not conf.contains("spark.sql.shuffle.partitions"):
        spark.conf.set("spark.sql.shuffle.partitions", _local_partitions())
    level = os.environ.get("MESH_SPARK_LOG_LEVEL") or ("ERROR" if local else None)
    if level:
        spark.sparkContext.setLogLevel(level)
    return spark


def lazy_spark(app_name: str = "feature-mesh") -> SparkSession:
    """``get_spark``, started only when first used, where that changes nothing.

    Commands that only read catalog records (``mesh catalog search``, ``show``...) need no
    Spark on the embedded backend: delta-rs reads the records. When no session is active and
    the one ``get_spark`` would start is a local classic one without the Delta jars (so
    ``open_table``'s ``auto`` gives ``embedded`` either way), this returns a stand-in that
    starts that session on its first use; otherwise the session itself. Databricks,
    spark-submit and Spark Connect always get their session.
    """
    active = _existing_session()
    if active is not None:
        return active
    environment = ("SPARK_REMOTE", "PYSPARK_GATEWAY_PORT", "DATABRICKS_RUNTIME_VERSION")
    connect = os.environ.get("SPARK_API_MODE", "").strip().lower() == "connect"
    if connect or any(os.environ.get(v) for v in environment) or _delta_jars_available():
        return get_spark(app_name)
    return cast("SparkSession", _LazySession(app_name))


def _existing_session() -> SparkSession | None:
    """The session this thread is in, else the one the process already started.

    A new thread (a thread pool in a notebook) has no active session, but the notebook's
    session exists: a builder's ``getOrCreate`` would return it after applying the builder's
    settings to it (time zone, partitions), changing the caller's session for good.
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    default = SparkSession._instantiatedSession  # classic PySpark's process-wide session
    context = getattr(default, "_sc", None)
    if default is not None and getattr(context, "_jsc", None) is not None:  # not stopped
        return default
    return None


class _LazySession:
    """Stands in for the session ``get_spark(app_name)`` returns; starts it on first use."""

    def __init__(self, app_name: str) -> None:
        self._app_name = app_name
        self._session: SparkSession | None = None

    @property
    def started(self) -> bool:
        return self._session is not None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy/pickle probes: not a reason to start Spark
            raise AttributeError(name)
        if self._session is None:
            self._session = get_spark(self._app_name)
        return getattr(self._session, name)

    def __repr__(self) -> str:
        state = "started" if self._session is not None else "not started"
        return f"<lazy Spark session {self._app_name!r}, {state}>"


def is_connect(spark: SparkSession) -> bool:
    """Whether ``spark`` is a Spark Connect session (no SparkContext or JVM in this process)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


@contextmanager
def _sigint_handler_kept() -> Iterator[None]:
    """Put back a SIGINT handler marked ``keep_over_spark`` after the SparkContext starts.

    PySpark's SparkContext installs its own handler (cancel every job from inside the
    interrupted Py4J call, then raise ``KeyboardInterrupt``); the ``mesh`` command's handler
    (``mesh.cli.interrupt``) silences Py4J's tracebacks first and cancels once it unwound.
    """
    on_main = threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGINT) if on_main else None
    try:
        yield
    finally:
        if before is not None and getattr(before, "keep_over_spark", False):
            signal.signal(signal.SIGINT, before)


def _delta_jars_available() -> bool:
    """True when a Delta Lake jar is configured for the session about to start."""
    if os.environ.get("MESH_DELTA_JARS"):
        return True
    extra = os.environ.get("PYSPARK_SUBMIT_ARGS", "") + os.environ.get("SPARK_CLASSPATH", "")
    return "delta-spark" in extra or "delta-core" in extra


def native_delta_enabled(spark: SparkSession) -> bool:
    """True when the session has the Delta extension loaded and its classes resolve.

    On Databricks (``DATABRICKS_RUNTIME_VERSION`` set) Delta is built in. A Spark Connect
    session's classes live on the server, out of reach: there the extension configured is
    taken as loaded (a server whose extension does not load does not start).
    """
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return True
    if isinstance(spark, _LazySession) and not spark.started:
        return False  # made only where the session it would start has no Delta jars
    extensions = spark.conf.get("spark.sql.extensions", "") or ""
    if DELTA_EXTENSION not in extensions:
        return False
    if is_connect(spark):
        return True
    try:
        jvm = spark.sparkContext._jvm
        jvm.java.lang.Class.forName(DELTA_EXTENSION)  # type: ignore[union-attr]
    except Exception:
        return False
    return True
