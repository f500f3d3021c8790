"""IPython Parallel on the bench's workloads; prints one JSON object (see bench/python-runner.ts).

A cluster is a controller plus n engines started with ipp.Cluster in a profile directory the Node
bench chose (so it can find leftovers). Jobs go through a LoadBalancedView (apply_async, map_async).
"""
import logging
import statistics
import time

import ipyparallel as ipp

from bench_common import (calibrate_spin_in_fresh_process, check_payload, echo, emit, figure, load_config, measured, noop,
                          payload_of, percentile, progress, serial_ms_in_fresh_process, spin, timed_ms)

config = load_config()
WORKERS = config["workers"]
RUNS = config["runs"]
WARMUP_JOBS = 200
ENGINE_WAIT_S = 120


def start_cluster():
    cluster = ipp.Cluster(n=WORKERS, profile_dir=config["profile_dir"], log_level=logging.ERROR)
    client = cluster.start_and_connect_sync()
    return cluster, client


def stop_cluster(cluster, client):
    try:
        client.close()
    finally:
        cluster.stop_cluster_sync()


def start_to_first_result():
    runs = []
    for _ in range(RUNS):
        started = time.perf_counter()
        cluster, client = start_cluster()
        try:
            client.load_balanced_view().apply_sync(noop)
            runs.append(time.perf_counter() - started)
        finally:
            stop_cluster(cluster, client)
    return {"start": figure(runs, "s")}


def tiny_jobs(view):
    jobs = config["tiny_jobs"]

    def by_apply():
        results = [view.apply_async(noop) for _ in range(jobs)]
        for result in results:
            result.get()

    def by_map():
        view.map_async(noop, range(jobs)).get()

    view.wait([view.apply_async(noop) for _ in range(WARMUP_JOBS)])  # warm-up
    apply_runs = [jobs / (timed_ms(by_apply) / 1000) for _ in range(RUNS)]
    map_runs = [jobs / (timed_ms(by_map) / 1000) for _ in range(RUNS)]
    return {
        "tiny_addjob": figure(apply_runs, "jobs/s", jobs, note="LoadBalancedView.apply_async"),
        "tiny_map": figure(map_runs, "jobs/s", jobs, note="LoadBalancedView.map_async"),
    }


def latency(view):
    jobs = config["latency_jobs"]
    for _ in range(50):
        view.apply_sync(noop)
    p50s, p99s = [], []
    for _ in range(RUNS):
        samples = [timed_ms(lambda: view.apply_sync(noop)) for _ in range(jobs)]
        p50s.append(percentile(samples, 50))
        p99s.append(percentile(samples, 99))
    return {"latency_p50": figure(p50s, "ms", jobs), "latency_p99": figure(p99s, "ms", jobs)}


def cpu_scaling(view):
    iterations = calibrate_spin_in_fresh_process(config["cpu_ms"])
    jobs = config["cpu_jobs"]
    view.map_async(spin, [iterations] * WORKERS).get()  # warm-up
    serial, parallel = [], []
    for _ in range(config["cpu_runs"]):  # interleaved, so a slower or faster spell of the machine affects both sides
        serial.append(serial_ms_in_fresh_process(jobs, iterations))
        parallel.append(timed_ms(lambda: view.map_async(spin, [iterations] * jobs).get()))
    speedups = [s / p for s, p in zip(serial, parallel)]
    return {"cpu_speedup": figure(speedups, "x", jobs, note=f"serial {statistics.median(serial):.0f} ms in a fresh Python process")}


def payload(view):
    sent = payload_of(config["payload_bytes"])

    def once():
        check_payload(sent, view.apply_sync(echo, sent))

    once()
    runs = [2 * sent.nbytes / 1e9 / (timed_ms(once) / 1000) for _ in range(config["payload_runs"])]
    return {"payload": figure(runs, "GB/s")}


def refresh(cluster, client):
    runs = []
    for _ in range(RUNS):
        before = set(client.ids)
        started = time.perf_counter()
        cluster.restart_engines_sync()
        deadline = time.monotonic() + ENGINE_WAIT_S
        fresh = []
        while len(fresh) < WORKERS and time.monotonic() < deadline:
            fresh = [i for i in client.ids if i not in before]
            if len(fresh) < WORKERS:
                time.sleep(0.005)
        if len(fresh) < WORKERS:
            raise RuntimeError(f"only {len(fresh)} engines came back after restart")
        client[fresh].apply_sync(noop)
        runs.append(time.perf_counter() - started)
    return {"refresh": figure(runs, "s", note="restart_engines, then every new engine answers")}


def main():
    results = {}
    progress("ipyparallel: start to first result")
    measured(results, ["start"], start_to_first_result)
    cluster, client = start_cluster()
    try:
        view = client.load_balanced_view()
        workloads = (
            (["tiny_addjob", "tiny_map"], tiny_jobs),
            (["latency_p50", "latency_p99"], latency),
            (["cpu_speedup"], cpu_scaling),
            (["payload"], payload),
        )
        for keys, work in workloads:
            progress(f"ipyparallel: {keys[0]}")
            measured(results, keys, lambda: work(view))
        progress("ipyparallel: refresh")
        measured(results, ["refresh"], lambda: refresh(cluster, client))
    finally:
        stop_cluster(cluster, client)
    emit(results, {"ipyparallel": ipp.__version__})


main()
