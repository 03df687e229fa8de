"""The thread-pool tuning the ``inspector`` command applies: passive OpenMP, one BLAS thread.

Each case runs in a fresh interpreter, because both settings are process-wide and the
wait policy only counts before torch is loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import json, os
from inspector.core.thread_tuning import tune_threads
applied = tune_threads()
import numpy, torch
from threadpoolctl import threadpool_info
blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
print(json.dumps({"applied": applied, "policy": os.environ.get("OMP_WAIT_POLICY"), "blas": blas}))
"""


def _probe(**env_changes: str | None) -> dict:
    env = dict(os.environ)
    for name in ("OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS", "INSPECTOR_THREAD_TUNING"):
        env.pop(name, None)
    for name, value in env_changes.items():
        if value is not None:
            env[name] = value
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_tuning_makes_openmp_passive_and_blas_single_threaded():
    result = _probe()
    assert result["applied"] == {"omp_wait_policy": True, "blas_threads": True}
    assert result["policy"] == "PASSIVE"
    assert result["blas"] and all(threads == 1 for threads in result["blas"])


def test_tuning_leaves_the_users_settings_alone():
    result = _probe(OMP_WAIT_POLICY="ACTIVE", OPENBLAS_NUM_THREADS="2")
    assert result["applied"] == {"omp_wait_policy": False, "blas_threads": False}
    assert result["policy"] == "ACTIVE"
    if (os.cpu_count() or 1) >= 2:
        assert 2 in result["blas"]


def test_tuning_can_be_switched_off():
    result = _probe(INSPECTOR_THREAD_TUNING="0")
    assert result["applied"] == {"omp_wait_policy": False, "blas_threads": False}
    assert result["policy"] is None


def test_the_command_line_module_does_not_load_torch_before_the_tuning():
    """``main`` tunes first; if importing the CLI loaded torch, the wait policy would be ignored."""
    code = "import sys, inspector.cli.main; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
