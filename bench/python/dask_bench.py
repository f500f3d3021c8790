"""Dask distributed on the bench's workloads; prints one JSON object (see bench/python-runner.ts).

A LocalCluster of worker processes with one thread each; jobs go through Client.submit and
Client.map with pure=False (so equal calls are not merged into one task).
"""
import logging
import statistics
import time

from bench_common import (calibrate_spin_in_fresh_process, check_payload, echo, emit, figure, load_config, measured, noop,
                          payload_of, percentile, progress, serial_ms_in_fresh_process, spin, timed_ms)

config = load_config()
WORKERS = config["workers"]
RUNS = config["runs"]
WARMUP_JOBS = 200


def start_cluster():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=WORKERS, processes=True, threads_per_worker=1, dashboard_address=None,
                           silence_logs=logging.ERROR, host="127.0.0.1")
    return cluster, Client(cluster)


def stop_cluster(cluster, client):
    try:
        client.close()
    finally:
        cluster.close()


def start_to_first_result():
    runs = []
    for _ in range(RUNS):
        started = time.perf_counter()
        cluster, client = start_cluster()
        try:
            client.submit(noop, pure=False).result()
            runs.append(time.perf_counter() - started)
        finally:
            stop_cluster(cluster, client)
    return {"start": figure(runs, "s")}


def tiny_jobs(client):
    jobs = config["tiny_jobs"]

    def by_submit():
        client.gather([client.submit(noop, i, pure=False) for i in range(jobs)])

    def by_map():
        client.gather(client.map(noop, range(jobs), pure=False))

    client.gather([client.submit(noop, i, pure=False) for i in range(WARMUP_JOBS)])  # warm-up
    submit_runs = [jobs / (timed_ms(by_submit) / 1000) for _ in range(RUNS)]
    map_runs = [jobs / (timed_ms(by_map) / 1000) for _ in range(RUNS)]
    return {
        "tiny_addjob": figure(submit_runs, "jobs/s", jobs, note="Client.submit + gather"),
        "tiny_map": figure(map_runs, "jobs/s", jobs, note="Client.map + gather"),
    }


def latency(client):
    jobs = config["latency_jobs"]
    for i in range(50):
        client.submit(noop, i, pure=False).result()
    p50s, p99s = [], []
    for _ in range(RUNS):
        samples = [timed_ms(lambda: client.submit(noop, pure=False).result()) for _ in range(jobs)]
        p50s.append(percentile(samples, 50))
        p99s.append(percentile(samples, 99))
    return {"latency_p50": figure(p50s, "ms", jobs), "latency_p99": figure(p99s, "ms", jobs)}


def cpu_scaling(client):
    iterations = calibrate_spin_in_fresh_process(config["cpu_ms"])
    jobs = config["cpu_jobs"]
    client.gather(client.map(spin, [iterations] * WORKERS, pure=False))  # warm-up
    serial, parallel = [], []
    for _ in range(config["cpu_runs"]):  # interleaved, so a slower or faster spell of the machine affects both sides
        serial.append(serial_ms_in_fresh_process(jobs, iterations))
        parallel.append(timed_ms(lambda: client.gather(client.map(spin, [iterations] * jobs, pure=False))))
    speedups = [s / p for s, p in zip(serial, parallel)]
    return {"cpu_speedup": figure(speedups, "x", jobs, note=f"serial {statistics.median(serial):.0f} ms in a fresh Python process")}


def payload(client):
    sent = payload_of(config["payload_bytes"])

    def once():
        check_payload(sent, client.submit(echo, sent, pure=False).result())

    once()
    runs = [2 * sent.nbytes / 1e9 / (timed_ms(once) / 1000) for _ in range(config["payload_runs"])]
    return {"payload": figure(runs, "GB/s")}


def refresh(client):
    runs = []
    for _ in range(RUNS):
        started = time.perf_counter()
        client.restart()
        workers = list(client.scheduler_info()["workers"])
        if len(workers) < WORKERS:
            raise RuntimeError(f"only {len(workers)} workers came back after restart")
        client.gather([client.submit(noop, w, workers=[w], allow_other_workers=False, pure=False) for w in workers])
        runs.append(time.perf_counter() - started)
    return {"refresh": figure(runs, "s", note="Client.restart, then every worker answers")}


def main():
    results = {}
    progress("dask: start to first result")
    measured(results, ["start"], start_to_first_result)
    cluster, client = start_cluster()
    try:
        workloads = (
            (["tiny_addjob", "tiny_map"], tiny_jobs),
            (["latency_p50", "latency_p99"], latency),
            (["cpu_speedup"], cpu_scaling),
            (["payload"], payload),
        )
        for keys, work in workloads:
            progress(f"dask: {keys[0]}")
            measured(results, keys, lambda: work(client))
        progress("dask: refresh")
        measured(results, ["refresh"], lambda: refresh(client))
    finally:
        stop_cluster(cluster, client)
    import dask
    import distributed

    emit(results, {"dask": dask.__version__, "distributed": distributed.__version__})


if __name__ == "__main__":
    main()
