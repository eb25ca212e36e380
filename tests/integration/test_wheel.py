"""Packaging (issue 20): the built wheel, installed with pip into a fresh venv outside the checkout,
gives a working hatui: CLI, demo (with its packaged configs and styles), completion, and a daemon
that leads a one-node cluster on a real etcd and PostgreSQL. Marked slow: pip installs every
dependency into the new venv (from the local cache or index), which takes most of a minute."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from servers import live_processes, make_tempdir, print_logs, process_args, remove_tree

from hatui.launcher import LocalCluster, Proc

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHECKOUT = Path(__file__).resolve().parents[2]


def clean_env() -> dict[str, str]:
    """No trace of the checkout or its venv: what a shell of the machine would have."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not k.startswith(("PATRONI_", "HATUI_"))}
    env["PATH"] = ":".join(p for p in env.get("PATH", "").split(":") if not p.startswith(str(CHECKOUT)))
    return env


def run(args: list, cwd: Path, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=kw.pop("env", clean_env()), capture_output=True,
                            text=True, timeout=600, check=False, **kw)
    assert result.returncode == 0, f"{args} failed: {result.stdout[-2000:]} {result.stderr[-2000:]}"
    return result


def test_wheel_installs_into_a_fresh_venv_and_runs(request: pytest.FixtureRequest) -> None:
    base = make_tempdir("hatui-wheel-")
    cluster: LocalCluster | None = None
    try:
        # The venv's own setuptools and wheel (the test extra): no download of a build backend.
        run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", base / "dist",
             CHECKOUT], cwd=base)
        wheels = list((base / "dist").glob("hatui-*.whl"))
        assert len(wheels) == 1
        names = zipfile.ZipFile(wheels[0]).namelist()
        for packaged in ("hatui/hatui.tcss", "hatui/demo_configs/postgres0.yml", "hatui/demo_configs/postgres1.yml",
                         "hatui/daemon/fence.py", "hatui/daemon/fence_guard.c"):
            assert packaged in names, f"{packaged} missing from the wheel"

        venv = base / "venv"
        python = getattr(sys, "_base_executable", None) or sys.executable
        run([python, "-m", "venv", venv], cwd=base)
        run([venv / "bin" / "pip", "install", "-q", wheels[0]], cwd=base)
        hatui = venv / "bin" / "hatui"
        where = run([venv / "bin" / "python", "-c", "import hatui; print(hatui.__file__)"], cwd=base).stdout
        assert where.startswith(str(venv)), where  # the installed copy, not the checkout

        assert "hatui version" in run([hatui, "--version"], cwd=base).stdout
        assert "switchover" in run([hatui, "--help"], cwd=base).stdout
        assert "--no-console" in run([hatui, "demo", "--help"], cwd=base).stdout
        for shell, marker in (("bash", "_hatui_completion"), ("zsh", "#compdef hatui")):
            env = dict(clean_env(), _HATUI_COMPLETE=f"{shell}_source")
            assert marker in run([hatui], cwd=base, env=env).stdout
        # The demo finds its packaged node files and the console its stylesheet.
        probe = ("from hatui.demo.cluster import find_templates; from hatui import app; import os;"
                 "print(*find_templates()); print(os.path.exists(app.HatuiApp.CSS_PATH))")
        found = run([venv / "bin" / "python", "-c", probe], cwd=base).stdout
        assert str(venv) in found and found.strip().endswith("True"), found

        cluster = LocalCluster(base / "cluster", 1, dcs={"ttl": 20, "loop_wait": 1, "retry_timeout": 3})
        cluster.write_configs()
        cluster.start_etcd()
        node = cluster.nodes[0]
        env = dict(clean_env(), PYTHONUNBUFFERED="1")
        node.daemon = Proc(node.name, [str(hatui), "daemon", str(node.config_path)], node.log_path, env=env).start()
        cluster.wait_for(lambda: cluster._check_alive(node) and node.patroni().get("role") == "primary", 120,
                         "the installed daemon leading")
        assert node.is_writable()
        # Its fencing guard is the native one, built from the packaged source.
        guards = [pid for pid, ppid in live_processes() if ppid == node.daemon.pid
                  and b"hatui.daemon.fence" in process_args(pid)]
        assert len(guards) == 1
        assert os.path.basename(os.readlink(f"/proc/{guards[0]}/exe")).startswith("fence-guard-")
    except BaseException:
        if cluster is not None:
            print_logs(cluster.nodes)
        raise
    finally:
        if cluster is not None:
            cluster.stop()
        rep = getattr(request.node, "_hatui_rep_call", None)
        if rep is None or not rep.failed:
            remove_tree(base)
