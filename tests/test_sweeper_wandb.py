"""One W&B project per sweep (issue 12): the trials' runs and the sweep's summary run share
project and group, read back from the offline run files; the trials' logger config uses
the keys the sweeper passes."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from omegaconf import OmegaConf

from tests.toy_app.harness import overrides, run_inprocess


def run_records(path: Path) -> list:
    """The `run` records of an offline .wandb file (W&B's leveldb-style log: a 7-byte file
    header, 32 KiB blocks of chunks with a 7-byte header: crc, length, type)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, block, i, chunk, runs = path.read_bytes(), 32768, 7, b"", []
    assert data.startswith(b":W&B")
    while i + 7 <= len(data):
        if block - i % block < 7:  # a block's tail too short for a header is padding
            i += block - i % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[i : i + 7])
        if kind == 0:
            break
        chunk += data[i + 7 : i + 7 + length]
        i += 7 + length
        if kind in (1, 4):  # full, or last of several
            record = pb.Record()
            record.ParseFromString(chunk)
            chunk = b""
            if record.WhichOneof("record_type") == "run":
                runs.append(record.run)
    return runs


def test_trial_and_summary_runs_share_project_and_group(tmp_path):
    sweep = tmp_path / "wbsweep"
    run_inprocess(
        overrides(
            sweep,
            "smac_mfmo",
            "hydra.sweeper.n_trials=4",
            "hydra.sweeper.wandb.mode=offline",
            f"wandb_dir={tmp_path / 'trial_runs'}",
        )
    )
    runs = {}
    for path in [*sweep.rglob("*.wandb"), *(tmp_path / "trial_runs").rglob("*.wandb")]:
        (run,) = run_records(path)
        runs[run.display_name] = run
    assert set(runs) == {"t0-b5", "t1-b5", "t2-b5", "t3-b5", "wbsweep-summary"}
    assert {r.project for r in runs.values()} == {"toy-project"}  # the app's project
    assert {r.run_group for r in runs.values()} == {"wbsweep"}
    summary = runs.pop("wbsweep-summary")
    assert summary.job_type == "sweep-summary"
    for name, run in runs.items():
        assert run.job_type == "trial"
        config = {u.key: json.loads(u.value_json) for u in run.config.update}
        trial_id = int(name[1])
        assert config["trial_id"] == trial_id and config["config_id"] == trial_id
        assert config["budget"] == 5 and config["budget_variable"] == "shift_depth"
        assert list(run.tags) == ["sweep=wbsweep", "sweeper=smac_mfmo", "shift_depth=5"]


def test_the_trials_wandb_logger_uses_the_sweepers_keys(compose_cfg):
    cfg = compose_cfg(
        "++job_type=trial",
        "++trial_info={trial_id:3,config_id:1,budget:10}",
        "++tags=['sweep=s','shift_depth=10']",
        "++run_group=s",
    )
    logger = OmegaConf.to_container(cfg.logger.wandb, resolve=True)
    assert logger["job_type"] == "trial" and logger["group"] == "s"
    assert logger["config"] == {"trial_id": 3, "config_id": 1, "budget": 10}
    assert logger["tags"] == ["sweep=s", "shift_depth=10"]
    assert logger["project"] == "dsnn"
