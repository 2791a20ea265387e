"""Pure parts of the instance backend: GPU discovery and allocation, snapshots, environments."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cogplane.common.contracts.predictions import PredictionUpdated
from cogplane.common.contracts.runners import HardwareCapacity
from cogplane.common.errors import CogplaneError
from cogplane.runner.hardware import Gpu, gpu_capacity, node_capacity, parse_nvidia_smi
from cogplane.runner.instances.capacity import Capacity
from cogplane.runner.instances.coglet import Launch, environment, model_environment
from cogplane.runner.instances.dispatch import raise_for
from cogplane.runner.instances.models import PredictionRun, Snapshot
from cogplane.runner.instances.outbox import shrunk

NVIDIA_SMI = """\
0, NVIDIA H100 80GB HBM3, 81559
1, NVIDIA H100 80GB HBM3, 81559
2, Tesla T4, 15360
"""


def test_nvidia_smi_output_is_parsed() -> None:
    assert parse_nvidia_smi(NVIDIA_SMI) == [
        Gpu(0, "NVIDIA H100 80GB HBM3", 81559),
        Gpu(1, "NVIDIA H100 80GB HBM3", 81559),
        Gpu(2, "Tesla T4", 15360),
    ]
    assert parse_nvidia_smi("") == []
    assert parse_nvidia_smi("0, NVIDIA A100-SXM4-80GB, 81920 MiB\n") == [
        Gpu(0, "NVIDIA A100-SXM4-80GB", 81920)
    ]


def test_real_gpus_are_offered_as_their_skus() -> None:
    offered = {c.sku: c.slots for c in gpu_capacity(parse_nvidia_smi(NVIDIA_SMI))}
    assert offered == {"gpu-t4": 1, "gpu-h100": 2, "gpu-h100-2x": 1}
    a100_40 = Gpu(0, "NVIDIA A100-SXM4-40GB", 40960)
    assert gpu_capacity([a100_40]) == []  # the catalog's A100 has 80 GB


def test_simulated_capacity_shadows_real_gpus_of_the_same_sku() -> None:
    capacity = node_capacity(2, "gpu-t4:3", parse_nvidia_smi(NVIDIA_SMI))
    assert capacity[:2] == [
        HardwareCapacity(sku="cpu", slots=2),
        HardwareCapacity(sku="gpu-t4", slots=3, simulated=True),
    ]
    assert {c.sku for c in capacity[2:]} == {"gpu-h100", "gpu-h100-2x"}


def test_gpu_instances_get_their_own_devices() -> None:
    gpus = parse_nvidia_smi(NVIDIA_SMI)
    capacity = Capacity("n1", node_capacity(1, "", gpus), gpus)
    pair = capacity.reserve("gpu-h100-2x")
    assert pair.cuda_visible_devices == "0,1"
    assert not pair.simulated
    with pytest.raises(CogplaneError, match="no capacity for gpu-h100 on n1"):
        capacity.reserve("gpu-h100")
    t4 = capacity.reserve("gpu-t4")
    assert t4.cuda_visible_devices == "2"
    capacity.release(pair)
    assert capacity.reserve("gpu-h100").devices == (0,)
    assert capacity.reserve("gpu-h100").devices == (1,)


def test_cpu_and_simulated_instances_see_no_gpu() -> None:
    capacity = Capacity("n1", node_capacity(1, "gpu-a40-large:1", []), [])
    cpu, fake = capacity.reserve("cpu"), capacity.reserve("gpu-a40-large")
    assert (cpu.cuda_visible_devices, cpu.simulated) == ("", False)
    assert (fake.cuda_visible_devices, fake.simulated) == ("", True)
    for sku in ("cpu", "gpu-a40-large", "gpu-t4", "no-such-sku"):
        with pytest.raises(CogplaneError) as caught:
            capacity.reserve(sku)
        assert caught.value.status == 409
    capacity.release(cpu)
    assert capacity.reserve("cpu").sku == "cpu"


def snapshot(status: str, logs: str = "", output: object = None) -> Snapshot:
    return Snapshot.model_validate({"id": "p1", "status": status, "logs": logs, "output": output})


def test_updates_are_numbered_and_stamped_by_the_runner() -> None:
    run = PredictionRun("p1", "i1")
    first = run.observe(snapshot("starting"))
    assert first is not None
    assert (first.seq, first.status) == (0, "processing")
    assert first.started_at is not None
    last = run.observe(snapshot("succeeded", "a\n", "out"))
    assert last is not None
    assert (last.seq, last.status, last.output, last.logs) == (1, "succeeded", "out", "a\n")
    assert last.started_at == first.started_at
    assert last.completed_at is not None


def test_stale_snapshots_are_dropped() -> None:
    run = PredictionRun("p1", "i1")
    assert run.observe(snapshot("processing", "a\nb\n", ["x", "y"])) is not None
    assert run.observe(snapshot("processing", "a\n", ["x", "y"])) is None  # older logs
    assert run.observe(snapshot("processing", "a\nb\n", ["x"])) is None  # older output
    assert run.observe(snapshot("succeeded", "a\nb\n", "xy")) is not None
    # Cog's fire-and-forget updates may overtake the final one: nothing comes after it.
    assert run.observe(snapshot("processing", "a\nb\nc\n", ["x", "y", "z"])) is None
    assert run.abandon("gone") is None


def test_an_abandoned_prediction_fails_once_if_cog_had_started_it() -> None:
    run = PredictionRun("p1", "i1")
    # Never started by Cog: the scheduler decides (it retries it once), so nothing is reported.
    assert run.abandon("instance lost") is None
    assert run.observe(snapshot("processing", "a\n", [])) is not None
    update = run.abandon("instance lost")
    assert update is not None
    assert (update.status, update.error, update.seq) == ("failed", "instance lost", 1)
    assert run.abandon("again") is None


def test_outputs_too_large_for_nats_become_a_clear_failure() -> None:
    common = {"prediction_id": "p1", "instance_id": "i1", "seq": 3, "output": "x" * 10}
    assert shrunk(PredictionUpdated(status="processing", **common), 10) is None
    final = shrunk(PredictionUpdated(status="succeeded", **common), 2_000_000)
    assert isinstance(final, PredictionUpdated)
    assert (final.status, final.output, final.seq) == ("failed", None, 3)
    assert final.error == "The prediction's output and logs are too large to report (2000000 bytes)"


def launch(slots: int = 1, model_env: tuple[str, ...] = ()) -> Launch:
    return Launch(
        workdir=Path("/w"),
        env_dir=Path("/envs/e1"),
        predict="predict.py:Predictor",
        slots=slots,
        port=5001,
        webhook_token="t",
        cuda_visible_devices="",
        model_env=model_env,
        log_path=Path("/l"),
    )


def test_coglet_environment() -> None:
    base = {"PATH": "/usr/bin", "HOME": "/root", "COGPLANE_DATABASE_URL": "secret"}
    base |= {"VIRTUAL_ENV": "/runner/.venv", "PYTHONPATH": "/runner"}
    env = environment(launch(model_env=("GREETING=hi=there", "PORT=1", "junk")), base)
    assert env["PATH"] == "/envs/e1/bin:/usr/bin"  # the model's python first: coglet spawns it
    assert env["PORT"] == "5001"  # the model cannot move its own port
    assert env["GREETING"] == "hi=there"
    assert env["COG_PREDICT_TYPE_STUB"] == "predict.py:Predictor"
    assert env["CUDA_VISIBLE_DEVICES"] == ""
    assert env["WEBHOOK_AUTH_TOKEN"] == "t"
    assert "COG_MAX_CONCURRENCY" not in env
    assert not {"COGPLANE_DATABASE_URL", "VIRTUAL_ENV", "PYTHONPATH"} & env.keys()
    assert environment(launch(slots=4), base)["COG_MAX_CONCURRENCY"] == "4"
    assert model_environment(["A=1", "=2", "B"]) == {"A": "1"}


def test_cogs_refusals_become_problems() -> None:
    raise_for(httpx.Response(202, json={"id": "p1", "status": "starting"}))
    detail = [{"loc": ["body", "input", "x"], "msg": "not an integer", "type": "value_error"}]
    cases = [
        (httpx.Response(409, json={"error": "At capacity"}), 409),
        (httpx.Response(503, json={"error": "Setup has not finished yet"}), 409),
        (httpx.Response(422, json={"detail": detail}), 422),
        (httpx.Response(500, text="boom"), 503),
    ]
    for response, status in cases:
        with pytest.raises(CogplaneError) as caught:
            raise_for(response)
        assert caught.value.status == status
    with pytest.raises(CogplaneError) as caught:
        raise_for(httpx.Response(422, json={"detail": detail}))
    assert caught.value.extra["invalid_fields"] == [
        {"type": "value_error", "field": "input.x", "description": "not an integer"}
    ]
