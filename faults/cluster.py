"""Control of the private PostgreSQL cluster that the shell wrapper started (never any other):
pg_ctl on $PGDATA_DIR, pg_isready and psql as the superuser on 127.0.0.1:$PG_PORT, with the
binaries in $PG_BIN.
"""

from __future__ import annotations

import os
import subprocess

ENV = os.environ
PG_BIN = ENV.get("PG_BIN", "/usr/lib/postgresql/15/bin")


def pg_ctl(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    cmd = ["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "-D", ENV["PGDATA_DIR"], *args]
    return subprocess.run(cmd, cwd=ENV["FAULTS_TMP"], capture_output=True, text=True, timeout=timeout)


def pg_ctl_popen(*args: str) -> subprocess.Popen:
    cmd = ["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "-D", ENV["PGDATA_DIR"], *args]
    return subprocess.Popen(cmd, cwd=ENV["FAULTS_TMP"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def pg_isready() -> bool:
    r = subprocess.run([f"{PG_BIN}/pg_isready", "-q", "-h", "127.0.0.1", "-p", ENV["PG_PORT"],
                        "-t", "1"], capture_output=True)
    return r.returncode == 0


def psql(sql: str, db: str = "todo", timeout: float = 30) -> list[list[str]]:
    """Runs SQL as the superuser directly against the cluster; returns rows of strings."""
    cmd = [f"{PG_BIN}/psql", "-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1",
           "-h", "127.0.0.1", "-p", ENV["PG_PORT"], "-U", "postgres", "-d", db, "-c", sql]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                         env={**ENV, "PGCONNECT_TIMEOUT": "5"})
    if out.returncode != 0:
        raise RuntimeError(f"psql failed: {out.stderr.strip()}")
    return [line.split("\t") for line in out.stdout.splitlines() if line]


def sql_literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"
