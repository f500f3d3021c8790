"""Dask distributed on the bench's workloads (bench/python/workloads.py); prints one JSON object.

A LocalCluster of worker processes with one thread each; jobs go through Client.submit and
Client.map with pure=False (so equal calls are not merged into one task).
"""
import logging

from bench_common import load_config, noop, read_table
from workloads import run_workloads


class Dask:
    name = "dask"
    submit_note = "Client.submit + gather"
    map_note = "Client.map + gather"
    refresh_note = "Client.restart, then every worker answers"
    shared_note = "Client.scatter(broadcast=True), then Client.submit with the future"

    def __init__(self, config):
        self.workers = config["workers"]
        self.cluster = self.client = None

    def start(self):
        from distributed import Client, LocalCluster

        self.cluster = LocalCluster(n_workers=self.workers, processes=True, threads_per_worker=1, dashboard_address=None,
                                    silence_logs=logging.ERROR, host="127.0.0.1")
        self.client = Client(self.cluster)

    def stop(self):
        try:
            self.client.close()
        finally:
            self.cluster.close()

    def call(self, fn, *args):
        return self.client.submit(fn, *args, pure=False).result()

    def submit_all(self, fn, args_list):
        return self.client.gather([self.client.submit(fn, *args, pure=False) for args in args_list])

    def map_all(self, fn, values):
        return self.client.gather(self.client.map(fn, values, pure=False))

    def shared_run(self, table, jobs):
        future = self.client.scatter(table, broadcast=True)
        try:
            return self.client.gather([self.client.submit(read_table, future, i, pure=False) for i in range(jobs)])
        finally:
            future.release()

    def restart(self):
        self.client.restart()
        workers = list(self.client.scheduler_info()["workers"])
        if len(workers) < self.workers:
            raise RuntimeError(f"only {len(workers)} workers came back after restart")
        self.client.gather([self.client.submit(noop, w, workers=[w], allow_other_workers=False, pure=False) for w in workers])

    def versions(self):
        import dask
        import distributed

        return {"dask": dask.__version__, "distributed": distributed.__version__}


if __name__ == "__main__":
    config = load_config()
    run_workloads(Dask(config), config)
