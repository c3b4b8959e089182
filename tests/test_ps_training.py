"""DeepShift-PS training options: fresh vs converted start, parameter groups, the shift
learning-rate factor, and DeepShift's exact recipe by config."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dsnn.lit_module import DSNNLitModule, parameter_groups
from dsnn.models import ResNet20, SmallCNN
from dsnn.network import build_lit_module, build_network
from dsnn.shift import ShiftConfig, convert_to_shift, named_shift_layers

PS_TINY = ["experiment=demo", "model.width=4", "quantization=ps", "logger=none"]


def on_rounding_centres(layers) -> bool:
    return all(
        torch.equal(m.shift, m.shift.round()) and torch.equal(m.sign.abs(), m.sign.abs().round())
        for m in layers
    )


def test_pretrained_null_starts_ps_fresh_and_a_pretrained_file_converts(compose_cfg, tmp_path):
    fresh = build_network(compose_cfg(*PS_TINY), in_channels=1, num_classes=10)
    layers = list(named_shift_layers(fresh).values())
    assert len(layers) == 20 and not on_rounding_centres(layers)  # ps_init=float
    assert all(0.5 <= m.sign.abs().min() for m in layers)

    torch.manual_seed(1)
    float_net = ResNet20(1, 10, width=4)
    torch.save(float_net.state_dict(), tmp_path / "float.pt")
    cfg = compose_cfg(*PS_TINY, f"pretrained={tmp_path / 'float.pt'}")
    converted = build_network(cfg, in_channels=1, num_classes=10)
    layers = named_shift_layers(converted)
    assert on_rounding_centres(layers.values())
    expected = float_net.conv1.weight.detach()
    expected = torch.sign(expected) * torch.exp2(expected.abs().log2().round().clamp(-14, 0))
    torch.testing.assert_close(layers["conv1"].exact_weight(), expected)


def test_ps_init_convert_reaches_the_old_converted_start(compose_cfg):
    cfg = compose_cfg(*PS_TINY, "quantization.ps_init=convert")
    layers = named_shift_layers(build_network(cfg, in_channels=1, num_classes=10)).values()
    assert on_rounding_centres(layers)


def test_q_converts_with_or_without_pretrained(compose_cfg):
    """A DeepShift-Q layer's own init is the float layer's: the seeded float draw is kept."""
    cfg = compose_cfg("experiment=demo", "model.width=4", "quantization=q", "seed=3")
    torch.manual_seed(3)
    expected = ResNet20(1, 10, width=4)
    torch.manual_seed(3)
    net = build_network(cfg, in_channels=1, num_classes=10)
    assert torch.equal(net.conv1.weight, expected.conv1.weight)


def test_parameter_groups_split_shift_and_sign_from_float_parameters():
    net = convert_to_shift(SmallCNN(1, 10, 4), 2, ShiftConfig("PS"))  # the last two layers
    groups = {g["name"]: g for g in parameter_groups(net, shift_lr_scale=7.0)}
    ps_layers = list(named_shift_layers(net).values())
    assert len(ps_layers) == 2
    expected = {id(p) for m in ps_layers for p in (m.shift, m.sign)}
    assert {id(p) for p in groups["shift_sign"]["params"]} == expected
    assert groups["shift_sign"]["weight_decay"] == 0.0 and groups["shift_sign"]["lr_scale"] == 7.0
    # everything else, the PS layers' biases and BatchNorm included, is "float"
    others = {id(p) for p in net.parameters()} - expected
    assert {id(p) for p in groups["float"]["params"]} == others and others
    assert groups["float"]["lr_scale"] == 1.0 and "weight_decay" not in groups["float"]
    # DeepShift-Q weights are float parameters: no shift_sign group
    q = convert_to_shift(SmallCNN(1, 10, 4), 4, ShiftConfig("Q"))
    assert [g["name"] for g in parameter_groups(q, 7.0)] == ["float"]


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adadelta"])
def test_the_lr_factor_lands_only_on_shift_and_sign(compose_cfg, optimizer):
    cfg = compose_cfg(*PS_TINY, f"optimizer={optimizer}", "shift_lr_scale=30")
    module = build_lit_module(cfg, _Data())
    config = module.configure_optimizers()
    opt = config["optimizer"]
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    base = cfg.optimizer.lr
    assert lrs == {"float": pytest.approx(base), "shift_sign": pytest.approx(30 * base)}
    # the cosine schedule starts from the scaled rates and keeps their ratio
    sched = config["lr_scheduler"]["scheduler"]
    assert sched.base_lrs == pytest.approx([base, 30 * base])
    opt.step()
    sched.step()
    assert opt.param_groups[1]["lr"] == pytest.approx(30 * opt.param_groups[0]["lr"])


def test_one_sgd_step_moves_shifts_by_the_scaled_rate():
    torch.manual_seed(0)
    # float64: a shift near -4 moved by 1e-6 is exact to 1e-15, not to float32's 5e-7
    nets = [convert_to_shift(SmallCNN(1, 10, 4), 4, ShiftConfig("PS")).double() for _ in "ab"]
    nets[1].load_state_dict(nets[0].state_dict())
    x, y = torch.randn(8, 1, 28, 28, dtype=torch.float64), torch.randint(0, 10, (8,))
    moves = []
    for net, scale in zip(nets, (1.0, 10.0), strict=True):
        module = DSNNLitModule(net, 10, lambda params: torch.optim.SGD(params, lr=0.01), None, 0.0,
                               shift_lr_scale=scale)  # fmt: skip
        opt = module.configure_optimizers()
        before = {n: p.detach().clone() for n, p in net.named_parameters()}
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        moves.append({n: (p.detach() - before[n]) for n, p in net.named_parameters()})
    for name, delta in moves[0].items():
        factor = 10.0 if name.endswith((".shift", ".sign")) else 1.0
        torch.testing.assert_close(moves[1][name], factor * delta, rtol=1e-7, atol=1e-13)
        assert delta.abs().max() > 0  # every parameter moved


def test_deepshifts_exact_recipe_is_reachable_by_config(compose_cfg):
    cfg = compose_cfg(*PS_TINY, "quantization.ps_init=deepshift", "shift_lr_scale=1")
    module = build_lit_module(cfg, _Data())
    layers = named_shift_layers(module.net)
    convs = [m for m in layers.values() if isinstance(m, nn.Conv2d)]
    assert all(-10 <= m.shift.min() and m.shift.max() <= -1 for m in convs)
    assert layers["linear"].shift.min() >= -14 and layers["linear"].shift.max() <= 0
    lrs = [g["lr"] for g in module.configure_optimizers()["optimizer"].param_groups]
    assert lrs == pytest.approx([cfg.optimizer.lr] * 2)


def test_a_bad_lr_factor_is_one_line(compose_cfg):
    from dsnn.config_checks import ConfigError, check_config

    with pytest.raises(
        ConfigError, match=r"^shift_lr_scale=0 is out of range: allowed a number in \(0, inf\)$"
    ):
        check_config(compose_cfg(*PS_TINY, "shift_lr_scale=0"))


class _Data:
    in_channels, num_classes, image_size = 1, 10, 28
