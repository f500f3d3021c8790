"""IPython Parallel on the bench's workloads (bench/python/workloads.py); prints one JSON object.

A cluster is a controller plus n engines started with ipp.Cluster in a profile directory the Node
bench chose (so it can find leftovers). Jobs go through a LoadBalancedView (apply_async, map_async).
"""
import logging
import time

import ipyparallel as ipp

from bench_common import load_config, noop
from workloads import run_workloads

ENGINE_WAIT_S = 120


@ipp.interactive
def read_pushed_table(i):
    """Runs in the engine's namespace, where DirectView.push put `table`."""
    return float(table[0] + table[-1] + i)  # noqa: F821 - pushed to the engine


class IPythonParallel:
    name = "ipyparallel"
    submit_note = "LoadBalancedView.apply_async"
    map_note = "LoadBalancedView.map_async"
    refresh_note = "restart_engines, then every new engine answers"
    shared_note = "DirectView.push, then LoadBalancedView.apply_async"

    def __init__(self, config):
        self.workers = config["workers"]
        self.profile_dir = config["profile_dir"]
        self.cluster = self.client = self.view = None

    def start(self):
        self.cluster = ipp.Cluster(n=self.workers, profile_dir=self.profile_dir, log_level=logging.ERROR)
        self.client = self.cluster.start_and_connect_sync()
        self.view = self.client.load_balanced_view()

    def stop(self):
        try:
            self.client.close()
        finally:
            self.cluster.stop_cluster_sync()

    def call(self, fn, *args):
        return self.view.apply_sync(fn, *args)

    def submit_all(self, fn, args_list):
        return [result.get() for result in [self.view.apply_async(fn, *args) for args in args_list]]

    def map_all(self, fn, values):
        return self.view.map_async(fn, values).get()

    def shared_run(self, table, jobs):
        dview = self.client[:]
        dview.push({"table": table}, block=True)
        try:
            return [r.get() for r in [self.view.apply_async(read_pushed_table, i) for i in range(jobs)]]
        finally:
            dview.execute("del table", block=True)

    def restart(self):
        before = set(self.client.ids)
        self.cluster.restart_engines_sync()
        deadline = time.monotonic() + ENGINE_WAIT_S
        fresh = []
        while len(fresh) < self.workers and time.monotonic() < deadline:
            fresh = [i for i in self.client.ids if i not in before]
            if len(fresh) < self.workers:
                time.sleep(0.005)  # ipyparallel announces new engines only through client.ids
        if len(fresh) < self.workers:
            raise RuntimeError(f"only {len(fresh)} engines came back after restart")
        self.client[fresh].apply_sync(noop)

    def versions(self):
        return {"ipyparallel": ipp.__version__}


if __name__ == "__main__":
    config = load_config()
    run_workloads(IPythonParallel(config), config)
