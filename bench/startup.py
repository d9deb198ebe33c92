#!/usr/bin/env python3
"""Start-up time of the service: from exec to the first 200 on GET /health.

Usage: startup.py BIN STARTS WORKDIR   (the service's settings come from the environment;
PORT is picked here). Starts the binary STARTS times, one after another, polling /health
every millisecond, and prints "median_ms sample_ms,sample_ms,...".
"""
import http.client
import os
import socket
import statistics
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health_ok(port):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def one_start(binary, workdir):
    env = dict(os.environ, PORT=str(free_port()), METRICS_ADDR="127.0.0.1:0")
    port = int(env["PORT"])
    with open(os.path.join(workdir, "startup.log"), "ab") as log:
        start = time.perf_counter()
        proc = subprocess.Popen([binary, "serve"], env=env, cwd=workdir,
                                stdout=log, stderr=log)
        try:
            while not health_ok(port):
                if proc.poll() is not None:
                    sys.exit(f"startup.py: the service exited with {proc.returncode}")
                if time.perf_counter() - start > 60:
                    sys.exit("startup.py: no 200 on /health within 60 s")
                time.sleep(0.001)
            return (time.perf_counter() - start) * 1000
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main():
    binary, starts, workdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    samples = [one_start(binary, workdir) for _ in range(starts)]
    print(f"{statistics.median(samples):.1f} " + ",".join(f"{s:.1f}" for s in samples))


if __name__ == "__main__":
    main()
