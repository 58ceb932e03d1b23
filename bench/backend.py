"""What the benchmarks measure of one statement: run it through psql in a
backend of its own, stream its output, and sample that backend's private
memory (RssAnon: its heap, not shared buffers) every 20 ms."""

import subprocess
import threading
import time


def private_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def run_statement(psql_args, sql, out=None):
    """Runs `sql` with psql (`psql_args`: the command and its connection
    options), writing its output to the binary file `out` if given:
    (seconds, bytes of output, peak private KiB of the backend, its pid)."""
    proc = subprocess.Popen([*psql_args, "-X", "-q", "-At", "-c", "SELECT pg_backend_pid()", "-c", sql],
                            stdout=subprocess.PIPE)
    pid = int(proc.stdout.readline())
    peak = [0]
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], private_kib(pid))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.monotonic()
    size = 0
    while chunk := proc.stdout.read(1 << 20):
        size += len(chunk)
        if out is not None:
            out.write(chunk)
    proc.wait()
    elapsed = time.monotonic() - started
    done.set()
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"failed: {sql}")
    return elapsed, size, peak[0], pid
