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
#   (the job's session, on a local master: shuffle partitions for the machine unless set here,
#    log level ERROR unless MESH_SPARK_LOG_LEVEL says otherwise)
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

join() { local IFS=,; echo "$*"; }
final=(--name "mesh-$(basename "$job" .py)" --conf spark.sql.session.timeZone=UTC
       --py-files "$(join "${py_files[@]}")")
[[ ${#archives[@]} -gt 0 ]] && final+=(--archives "$(join "${archives[@]}")")
[[ ${#packages[@]} -gt 0 ]] && final+=(--packages "$(join "${packages[@]}")")

set -x
exec "$submit" "${final[@]}" "${spark_args[@]}" "$job" "${job_args[@]}"
