"""The README's example straggler policy (tests/core/test_plugin_policy.py runs it)."""

from pydantic import Field
from simulator.server.policy import AggregationPolicy, PolicyParams

class FirstHalfParams(PolicyParams):
    fraction: float = Field(default=0.5, gt=0, le=1)

class FirstHalf(AggregationPolicy):
    """Merge as soon as a fraction of the fleet has reported; late updates are dropped."""
    Params = FirstHalfParams

    def start(self, server):
        self.round = server.dispatch(server.idle_devices())
        self.arrived = []

    def on_arrival(self, server, job):
        if job.job_id not in {j.job_id for j in self.round}:
            server.drop(job, "late")
            return
        self.arrived.append(job)
        if len(self.arrived) >= max(1, int(self.params.fraction * len(self.round))):
            for j in self.round:
                if j not in self.arrived:
                    server.cancel(j, "round closed")
            server.aggregate([(j, j.num_samples) for j in self.arrived], "k", mode="absolute")
            self.start(server)

    def on_device_ready(self, server, device):
        pass
