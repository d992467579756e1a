#!/usr/bin/env bash
# Submit a job of jobs/ to Spark (local, YARN, Kubernetes, standalone) with the mesh package.
#
#   ./spark-submit.sh JOB [SPARK-SUBMIT OPTIONS...] [-- JOB ARGUMENTS...]
#
#   ./spark-submit.sh jobs/run_mesh.py --master 'local[2]' -- --warehouse /tmp/mesh
#   ./spark-submit.sh jobs/run_mesh.py --master yarn --deploy-mode cluster \
#       -- --warehouse s3a://bucket/mesh --scale medium
#   MESH_DELTA_PACKAGES=1 ./spark-submit.sh jobs/generate_data.py --master yarn -- --scale large
#
# What it adds to spark-submit:
#   --py-files build/submit/mesh.zip     the mesh package, zipped from this checkout
#   ./conf (the folder it is run from)   client/local mode: read in place (MESH_CONF);
#                                        cluster mode: shipped as --archives conf.zip#mesh_conf
#   --conf spark.sql.session.timeZone=UTC
#   on a local master: the job's session gets shuffle partitions for the machine (unless set
#                      here) and log level ERROR (or MESH_SPARK_LOG_LEVEL); Spark starts at that
#                      level too (not its some 50 INFO lines): SPARK_SUBMIT_OPTS=
#                      -Dlog4j2.configurationFile=mesh/log4j2.properties, unless a log4j
#                      configuration of yours is in use (-Dlog4j.configurationFile or
#                      -Dlog4j2.configurationFile in SPARK_SUBMIT_OPTS, --driver-java-options,
#                      --conf or spark-defaults.conf; log4j2.* in SPARK_CONF_DIR)
#   with MESH_DELTA_PACKAGES=1: --packages io.delta:delta-spark_2.13:<installed delta-spark>
#                                and the Delta SQL extension + catalog (native backend; needs
#                                Maven access from the cluster). Without it, the embedded
#                                backend (delta-rs on the driver) writes the tables.
#
# Environment:
#   SPARK_SUBMIT        spark-submit to run (default: $SPARK_HOME/bin/spark-submit, then the one
#                       on PATH, then .venv/bin/spark-submit)
#   MESH_CONF_DIR       conf folder to use/ship (default: ./conf, the mesh definitions of the
#                       folder it is run from, as for the mesh command)
#   MESH_DELTA_VERSION  Delta version for MESH_DELTA_PACKAGES (default: installed delta-spark)
#   MESH_SPARK_LOG_LEVEL  the job's log level (ERROR, WARN, INFO, ...); unset: ERROR on a local
#                       master (from start-up on), the cluster's own on a cluster
#   MESH_PYTHON_ENV     a venv-pack/conda-pack archive with mesh's dependencies (pydantic, PyYAML,
#                       deltalake, pyarrow) for clusters whose Python lacks them; shipped with
#                       --archives and used as spark.pyspark.python
#   PYTHON              python used to build the zips (default: .venv/bin/python, then python3)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# The comment block above, for --help.
header() { sed -n '2,$p' "$0" | sed '/^set /,$d; s/^# \{0,1\}//'; }

# The jobs of jobs/ as they are typed from the folder it is run from.
jobs_typed() {
    local prefix="$root/" job  # absolute, unless the checkout is this folder or under it
    if [[ "$root" == "$PWD" ]]; then
        prefix=""
    elif [[ "$root" == "$PWD"/* ]]; then
        prefix="${root#"$PWD"/}/"
    fi
    echo "Jobs:"
    for job in "$root"/jobs/*.py; do echo "  ${prefix}jobs/${job##*/}"; done
}

# A usage error: what was wrong, how to call it, the jobs there are; exit 2.
usage_error() {
    [[ -n "$1" ]] && echo "error: $1" >&2
    {
        echo "usage: $0 JOB [SPARK-SUBMIT OPTIONS...] [-- JOB ARGUMENTS...]"
        jobs_typed
        echo "Options and environment: $0 --help"
    } >&2
    exit 2
}

[[ $# -lt 1 ]] && usage_error ""
job="$1"
shift
if [[ "$job" == "-h" || "$job" == "--help" ]]; then
    header
    echo
    jobs_typed
    exit 0
fi
if [[ "$job" == -* ]]; then
    usage_error "the job comes first, before spark-submit's options (got '$job')"
fi
if [[ ! -f "$job" ]]; then
    usage_error "job file '$job' not found in $PWD"
fi

# Split spark-submit options from job arguments at "--"; merge list-valued options we also set.
spark_args=()
job_args=()
py_files=()
archives=()
packages=()
deploy_mode=client
while [[ $# -gt 0 ]]; do
    case "$1" in
        --) shift; job_args=("$@"); break ;;
        --py-files) py_files+=("$2"); shift 2 ;;
        --py-files=*) py_files+=("${1#*=}"); shift ;;
        --archives) archives+=("$2"); shift 2 ;;
        --archives=*) archives+=("${1#*=}"); shift ;;
        --packages) packages+=("$2"); shift 2 ;;
        --packages=*) packages+=("${1#*=}"); shift ;;
        --deploy-mode) deploy_mode="$2"; spark_args+=("$1" "$2"); shift 2 ;;
        --deploy-mode=*) deploy_mode="${1#*=}"; spark_args+=("$1"); shift ;;
        *) spark_args+=("$1"); shift ;;
    esac
done

python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    if [[ -x "$root/.venv/bin/python" ]]; then python="$root/.venv/bin/python"; else python=python3; fi
fi

submit="${SPARK_SUBMIT:-}"
if [[ -z "$submit" ]]; then
    if [[ -n "${SPARK_HOME:-}" && -x "$SPARK_HOME/bin/spark-submit" ]]; then
        submit="$SPARK_HOME/bin/spark-submit"
    elif command -v spark-submit >/dev/null 2>&1; then
        submit="$(command -v spark-submit)"
    elif [[ -x "$root/.venv/bin/spark-submit" ]]; then
        submit="$root/.venv/bin/spark-submit"
    else
        echo "error: spark-submit not found; set SPARK_HOME or SPARK_SUBMIT, or run 'make setup'" >&2
        exit 2
    fi
fi

conf_dir="${MESH_CONF_DIR:-conf}"
if [[ ! -d "$conf_dir" ]]; then
    echo "error: conf folder '$conf_dir' not found in $(pwd); run from the folder that holds" \
         "the mesh's conf/, or set MESH_CONF_DIR to it" >&2
    exit 2
fi
conf_dir="$(cd "$conf_dir" && pwd)"
build="$root/build/submit"
mkdir -p "$build"

# Zip the package and the conf folder (no caches); zip entries are relative to their roots.
"$python" - "$root/mesh" "$build/mesh.zip" "$conf_dir" "$build/conf.zip" <<'PY'
import os, sys, zipfile

def pack(src, dest, prefix):
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for folder, dirs, files in os.walk(src):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith((".pyc", ".pyo")):
                    continue
                path = os.path.join(folder, name)
                zf.write(path, os.path.join(prefix, os.path.relpath(path, src)))

pack(sys.argv[1], sys.argv[2], "mesh")
pack(sys.argv[3], sys.argv[4], "")
PY
py_files=("$build/mesh.zip" "${py_files[@]}")

if [[ "$deploy_mode" == "cluster" ]]; then
    # The driver runs on the cluster: it reads conf/ from the extracted archive.
    archives+=("$build/conf.zip#mesh_conf")
    spark_args+=(--conf spark.yarn.appMasterEnv.MESH_CONF=mesh_conf
                 --conf spark.kubernetes.driverEnv.MESH_CONF=mesh_conf)
else
    export MESH_CONF="$conf_dir"
    # Local executors run Python from this checkout's environment unless told otherwise.
    if [[ -z "${PYSPARK_PYTHON:-}" ]]; then export PYSPARK_PYTHON="$python"; fi
fi

if [[ "${MESH_DELTA_PACKAGES:-0}" == "1" ]]; then
    delta_version="${MESH_DELTA_VERSION:-$("$python" -c 'import importlib.metadata as m; print(m.version("delta-spark"))')}"
    packages+=("io.delta:delta-spark_2.13:$delta_version")
    spark_args+=(--conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension
                 --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog)
fi

if [[ -n "${MESH_PYTHON_ENV:-}" ]]; then
    archives+=("$MESH_PYTHON_ENV#environment")
    spark_args+=(--conf spark.pyspark.python=./environment/bin/python)
fi

# The master spark-submit runs the job on, as it finds it: --master, else spark.master from
# --conf, then from its properties file, else MASTER, else local[*].
spark_conf_dir="${SPARK_CONF_DIR:-${SPARK_HOME:+$SPARK_HOME/conf}}"
properties="${spark_conf_dir:+$spark_conf_dir/spark-defaults.conf}"
master=""
conf_master=""
for ((i = 0; i < ${#spark_args[@]}; i++)); do
    arg="${spark_args[i]}"
    next="${spark_args[i + 1]:-}"
    case "$arg" in
        --master) master="$next" ;;
        --master=*) master="${arg#*=}" ;;
        --conf | -c) if [[ "$next" == spark.master=* ]]; then conf_master="${next#*=}"; fi ;;
        --conf=spark.master=*) conf_master="${arg#--conf=spark.master=}" ;;
        --properties-file) properties="$next" ;;
        --properties-file=*) properties="${arg#*=}" ;;
    esac
done
if [[ -z "$master" ]]; then master="$conf_master"; fi
if [[ -z "$master" && -f "$properties" ]]; then
    master="$(sed -n 's/^[[:space:]]*spark\.master[[:space:]]*[=:[:space:]][[:space:]]*//p' \
              "$properties" | tail -n 1 | sed 's/[[:space:]]*$//')"
fi
master="${master:-${MASTER:-local[*]}}"

# Spark logs some 50 INFO lines while it starts, before the job's session sets the level. On
# a local master the driver starts at that level, unless a log4j configuration of the user's
# is in use (-Dlog4j2.configurationFile anywhere, log4j2.* in Spark's conf folder).
level="${MESH_SPARK_LOG_LEVEL:-ERROR}"
case "$(echo "$level" | tr '[:lower:]' '[:upper:]')" in
    ALL | DEBUG | ERROR | FATAL | INFO | OFF | TRACE | WARN) ;;
    *) echo "error: MESH_SPARK_LOG_LEVEL='$level' is not a log level; use one of" \
            "ALL, DEBUG, ERROR, FATAL, INFO, OFF, TRACE, WARN" >&2
       exit 2 ;;
esac
own_log4j() {
    local name
    [[ "${SPARK_SUBMIT_OPTS:-} ${spark_args[*]}" == *log4j*.configurationFile* ]] && return 0
    [[ -f "$properties" ]] && grep -q 'log4j.*\.configurationFile' "$properties" && return 0
    for name in log4j2.properties log4j2.xml log4j2.yaml log4j2.yml log4j2.json; do
        [[ -n "$spark_conf_dir" && -f "$spark_conf_dir/$name" ]] && return 0
    done
    return 1
}
launch=()  # the environment spark-submit gets on top of this one (shown in its command line)
if [[ "$master" == local* ]] && ! own_log4j; then
    # The launcher splits SPARK_SUBMIT_OPTS as a shell would: quote the path.
    log4j="$root/mesh/log4j2.properties"
    log4j="${log4j//\\/\\\\}"
    log4j="\"${log4j//\"/\\\"}\""
    opts="-Dlog4j2.configurationFile=$log4j -Dmesh.spark.log.level=$level"
    launch=(env "SPARK_SUBMIT_OPTS=$opts${SPARK_SUBMIT_OPTS:+ $SPARK_SUBMIT_OPTS}")
fi

join() { local IFS=,; echo "$*"; }
final=(--name "mesh-$(basename "$job" .py)" --conf spark.sql.session.timeZone=UTC
       --py-files "$(join "${py_files[@]}")")
[[ ${#archives[@]} -gt 0 ]] && final+=(--archives "$(join "${archives[@]}")")
[[ ${#packages[@]} -gt 0 ]] && final+=(--packages "$(join "${packages[@]}")")

set -x
exec "${launch[@]}" "$submit" "${final[@]}" "${spark_args[@]}" "$job" "${job_args[@]}"
