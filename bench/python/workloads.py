"""The bench's workloads, written once for every Python system.

A system is an object with:
  name                       how progress lines and errors name it
  start() / stop()           a fresh cluster with config["workers"] workers, and its end
  call(fn, *args)            one job, waited for; returns its result
  submit_all(fn, args_list)  one job per args tuple, submitted one by one, all waited for
  map_all(fn, values)        the system's map over values, all waited for
  restart()                  kill and restart every worker; returns once each new one has answered a job
  shared_run(table, jobs)    one shared-data run: the table put on every worker once, then one
                             job per index reading it, all waited for; returns the results
  submit_note, map_note, refresh_note, shared_note, versions()   words for the report
"""
import statistics
import time

from bench_common import (calibrate_spin_in_fresh_process, check_payload, check_shared, echo, emit, figure, measured, noop,
                          payload_of, percentile, progress, serial_ms_in_fresh_process, spin, table_of, timed_ms)

WARMUP_JOBS = 200


def start_to_first_result(system, config):
    runs = []
    for _ in range(config["runs"]):
        started = time.perf_counter()
        system.start()
        try:
            system.call(noop)
            runs.append(time.perf_counter() - started)
        finally:
            system.stop()
    return {"start": figure(runs, "s")}


def tiny_jobs(system, config):
    jobs = config["tiny_jobs"]
    system.submit_all(noop, [(i,) for i in range(WARMUP_JOBS)])
    submit_runs = [jobs / (timed_ms(lambda: system.submit_all(noop, [(i,) for i in range(jobs)])) / 1000) for _ in range(config["runs"])]
    map_runs = [jobs / (timed_ms(lambda: system.map_all(noop, range(jobs))) / 1000) for _ in range(config["runs"])]
    return {
        "tiny_addjob": figure(submit_runs, "jobs/s", jobs, note=system.submit_note),
        "tiny_map": figure(map_runs, "jobs/s", jobs, note=system.map_note),
    }


def latency(system, config):
    jobs = config["latency_jobs"]
    for _ in range(50):
        system.call(noop)
    p50s, p99s = [], []
    for _ in range(config["runs"]):
        samples = [timed_ms(lambda: system.call(noop)) for _ in range(jobs)]
        p50s.append(percentile(samples, 50))
        p99s.append(percentile(samples, 99))
    return {"latency_p50": figure(p50s, "ms", jobs), "latency_p99": figure(p99s, "ms", jobs)}


def cpu_scaling(system, config):
    iterations = calibrate_spin_in_fresh_process(config["cpu_ms"])
    jobs = config["cpu_jobs"]
    system.map_all(spin, [iterations] * config["workers"])  # warm-up
    serial, parallel = [], []
    for _ in range(config["cpu_runs"]):  # interleaved, so a slower or faster spell of the machine affects both sides
        serial.append(serial_ms_in_fresh_process(jobs, iterations))
        parallel.append(timed_ms(lambda: system.map_all(spin, [iterations] * jobs)))
    speedups = [s / p for s, p in zip(serial, parallel)]
    return {"cpu_speedup": figure(speedups, "x", jobs, note=f"serial {statistics.median(serial):.0f} ms in a fresh Python process")}


def payload(system, config):
    sent = payload_of(config["payload_bytes"])

    def once():
        check_payload(sent, system.call(echo, sent))

    once()
    runs = [2 * sent.nbytes / 1e9 / (timed_ms(once) / 1000) for _ in range(config["payload_runs"])]
    return {"payload": figure(runs, "GB/s")}


def refresh(system, config):
    runs = []
    for _ in range(config["runs"]):
        started = time.perf_counter()
        system.restart()
        runs.append(time.perf_counter() - started)
    return {"refresh": figure(runs, "s", note=system.refresh_note)}


def shared_data(system, config):
    """Jobs reading one large array put on every worker once (bench/engine/shared-data.ts)."""
    table = table_of(config["shared_bytes"])
    jobs = config["shared_jobs"]

    def once():
        check_shared(system.shared_run(table, jobs), jobs)

    once()  # warm-up
    runs = [timed_ms(once) / 1000 for _ in range(config["shared_runs"])]
    return {"shared_push": figure(runs, "s", jobs, note=system.shared_note)}


def run_shared(system, config):
    """The shared-data section alone, on a fresh cluster; prints the JSON line the Node bench reads."""
    results = {}
    system.start()
    try:
        progress(f"{system.name}: shared data")
        measured(results, ["shared_push"], lambda: shared_data(system, config))
    finally:
        system.stop()
    emit(results, system.versions())


def run_workloads(system, config):
    """Every workload on one system; prints the JSON line the Node bench reads."""
    if config.get("workloads") == "shared":
        return run_shared(system, config)
    results = {}
    progress(f"{system.name}: start to first result")
    measured(results, ["start"], lambda: start_to_first_result(system, config))
    system.start()
    try:
        workloads = (
            (["tiny_addjob", "tiny_map"], tiny_jobs),
            (["latency_p50", "latency_p99"], latency),
            (["cpu_speedup"], cpu_scaling),
            (["payload"], payload),
            (["refresh"], refresh),
        )
        for keys, work in workloads:
            progress(f"{system.name}: {keys[0]}")
            measured(results, keys, lambda: work(system, config))
    finally:
        system.stop()
    emit(results, system.versions())
