"""`trainer.compile=true`: the compiled network trains, checkpoints, exports and is counted
by the analytic energy model like the eager one (CPU, torch.compile's default backend)."""

from __future__ import annotations

import shutil

import pytest
import torch

from dsnn.energy.analytic import estimate_energy
from dsnn.models import SmallCNN
from dsnn.network import read_state_dict
from dsnn.shift import ShiftConfig, convert_to_shift
from dsnn.training import train

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="inductor needs a C++ compiler")

# a 4-layer CNN, all layers DeepShift-PS, on 550 images (1 % of the train split), 1 epoch
TINY = [
    "experiment=search_bench", "quantization=ps", "data.fraction=0.01", "data.val_size=500",
    "trainer.max_epochs=1", "energy.enabled=false", "optimizer.momentum=0.0",
    "trainer.deterministic=true", "callbacks=default",
]  # fmt: skip


def test_compiled_training_matches_eager(compose_cfg, tmp_path):
    runs = {}
    for compiled in (False, True):
        cfg = compose_cfg(*TINY, f"trainer.compile={str(compiled).lower()}")
        cfg.paths.output_dir = str(tmp_path / str(compiled))
        objectives = train(cfg)
        runs[compiled] = (objectives, tmp_path / str(compiled))
    (eager, eager_dir), (comp, comp_dir) = runs[False], runs[True]
    # the analytic energy (op-count hooks) and the accuracy are the same
    assert comp["energy/model_uj_per_image"] == eager["energy/model_uj_per_image"]
    assert comp["val/acc"] == pytest.approx(eager["val/acc"], abs=0.01)
    # exported models: the same keys (no `_orig_mod.` prefix), the same shifts and signs
    a = torch.load(eager_dir / "model.pt", weights_only=True)
    b = torch.load(comp_dir / "model.pt", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        if key.endswith((".shift", ".sign")):
            assert (a[key] == b[key]).float().mean() > 0.999, key
        elif a[key].is_floating_point():
            torch.testing.assert_close(b[key], a[key], rtol=1e-3, atol=1e-4)
    # the checkpoint holds the eager network's keys too: resume and evaluate read it
    assert read_state_dict(comp_dir / "checkpoints" / "last.ckpt").keys() == a.keys()


def test_compiled_network_forward_and_op_counts_match_eager():
    torch.manual_seed(0)
    net = convert_to_shift(SmallCNN(1, 10, 4), 4, ShiftConfig("PS")).eval()
    x = torch.randn(8, 1, 28, 28)
    with torch.no_grad():
        expected = net(x)
    eager_energy = estimate_energy(net, (1, 28, 28))
    net.compile()
    with torch.no_grad():
        torch.testing.assert_close(net(x), expected, rtol=1e-5, atol=1e-5)
    compiled_energy = estimate_energy(net, (1, 28, 28))
    assert compiled_energy.total_uj == eager_energy.total_uj
    assert compiled_energy.layers.keys() == eager_energy.layers.keys()
