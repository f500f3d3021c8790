"""Shared by the Python comparison benches: configuration, timing, statistics, the job functions."""
import json
import math
import os
import statistics
import subprocess
import sys
import time


def load_config():
    """The Node bench passes one JSON object as the only argument."""
    return json.loads(sys.argv[1])


def progress(message):
    print(message, file=sys.stderr, flush=True)


def emit(figures, versions):
    """The last line on stdout is the result the Node bench reads."""
    versions = {**versions, "python": sys.version.split()[0]}
    print(json.dumps({"figures": figures, "versions": versions}), flush=True)


def percentile(samples, p):
    """Nearest-rank percentile, as bench/stats.ts computes it."""
    ordered = sorted(samples)
    rank = min(len(ordered), max(1, math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]


def figure(runs, unit, jobs=None, note=None):
    """The median of runs, with the runs themselves for the record (as bench/report/figures.ts)."""
    out = {"value": statistics.median(runs), "unit": unit, "runs": runs}
    if jobs is not None:
        out["jobs"] = jobs
    if note is not None:
        out["note"] = note
    return out


def missing(reason):
    return {"missing": reason}


def measured(results, keys, work):
    """Runs one workload; a failure is recorded for its figures (keys) and the others go on."""
    try:
        results.update(work())
    except Exception as error:  # noqa: BLE001 - every failure is reported, none stops the rest
        progress(f"{keys[0]}: failed: {error!r}")
        for key in keys:
            results[key] = missing(f"failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")


def noop(*args):
    return None


def echo(value):
    return value


def spin(iterations):
    x = 0.0
    for i in range(iterations):
        x += math.sqrt(i + x * 1e-12)
    return x


def calibrate_spin(target_ms):
    """Iterations of spin that take about target_ms in this process."""
    iterations = 10_000
    for _ in range(30):
        started = time.perf_counter()
        spin(iterations)
        took = (time.perf_counter() - started) * 1000
        if took > target_ms / 4 and abs(took - target_ms) / target_ms < 0.03:
            return iterations
        iterations = max(1000, round(iterations * target_ms / max(took, 0.01)))
    return iterations


def serial_ms(jobs, iterations):
    started = time.perf_counter()
    for _ in range(jobs):
        spin(iterations)
    return (time.perf_counter() - started) * 1000


def in_fresh_process(expression):
    """Evaluates a bench_common expression in a new interpreter and returns its value: timings taken
    here would share the GIL with the client's background threads."""
    code = f"import bench_common; print(bench_common.{expression})"
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([sys.executable, "-c", code], cwd=here, capture_output=True, text=True, check=True, timeout=120)
    return float(out.stdout.strip())


def calibrate_spin_in_fresh_process(target_ms):
    return int(in_fresh_process(f"calibrate_spin({target_ms})"))


def serial_ms_in_fresh_process(jobs, iterations):
    return in_fresh_process(f"serial_ms({jobs}, {iterations})")


def payload_of(nbytes):
    import numpy

    array = numpy.zeros(nbytes // 8, dtype=numpy.float64)
    array[::4096] = numpy.arange(0, len(array), 4096)
    return array


def check_payload(sent, back):
    if back.shape != sent.shape or back[4096] != 4096:
        raise RuntimeError("payload came back altered")


def table_of(nbytes):
    """The shared-data workload's array: first element 1, last 2 (as tableOf in shared-data.ts)."""
    import numpy

    table = numpy.zeros(nbytes // 8, dtype=numpy.float64)
    table[0] = 1
    table[-1] = 2
    return table


def read_table(table, i):
    """A shared-data job given the table (a Dask future resolves to it): reads two elements."""
    return float(table[0] + table[-1] + i)


def check_shared(results, jobs):
    for i, result in enumerate(results):
        if result != 3 + i:
            raise RuntimeError(f"job {i} read {result!r}, not {3 + i}")
    if len(results) != jobs:
        raise RuntimeError(f"{len(results)} of {jobs} results came")


def timed_ms(work):
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000
