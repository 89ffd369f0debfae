"""Engine options set by the operator: --engine-option / SLICERFM_ENGINE_OPTIONS."""

import argparse

import pytest

from slicerfm_backend import cli
from slicerfm_backend.engine_core.manager import EngineManager
from slicerfm_backend.engine_core.options import parse_option_specs, typed_options
from slicerfm_backend.engines.registry import SEGMENTATION
from slicerfm_backend.evaluation.evaluate import backend_environment
from slicerfm_backend.settings import Settings, settings_from_args


def test_option_specs_are_split_per_engine_and_repeated_flags_merge():
    assert parse_option_specs(["sam-med3d.max_crops=4", "sam-med3d.precision=fp16,x.y=1"]) == {
        "sam-med3d": {"max_crops": "4", "precision": "fp16"}, "x": {"y": "1"}}


@pytest.mark.parametrize("bad", ["max_crops=4", "sam-med3d.max_crops", "sam-med3d.=4", ".k=v", "e.k="])
def test_a_malformed_option_is_refused_with_the_expected_form(bad):
    with pytest.raises(ValueError, match="ENGINE.KEY=VALUE"):
        parse_option_specs([bad])


def test_sam_med3d_options_are_parsed_to_their_types():
    types = SEGMENTATION.engine_class("sam-med3d").option_types
    assert typed_options("sam-med3d", types, {"max_crops": "4", "precision": "fp16",
                                              "embedding_cache_mb": "512.5"}) == {
        "max_crops": 4, "precision": "fp16", "embedding_cache_mb": 512.5}


@pytest.mark.parametrize("given, message", [
    ({"max_crop": "4"}, "has no option 'max_crop' (its options: embedding_cache_mb, max_crops, precision)"),
    ({"max_crops": "0"}, "sam-med3d.max_crops: must be a whole number >= 1"),
    ({"max_crops": "four"}, "sam-med3d.max_crops"),
    ({"precision": "int8"}, "must be one of bf16, fp16, fp32"),
    ({"embedding_cache_mb": "-1"}, "must be a number > 0"),
])
def test_a_wrong_option_stops_the_server_at_start_up_with_what_is_accepted(given, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        EngineManager(SEGMENTATION, ["sam-med3d"], "cpu", engine_options={"sam-med3d": given})


def test_an_option_the_classic_engine_does_not_take_is_refused_with_the_ones_it_takes():
    with pytest.raises(ValueError, match="engine 'classic' has no option 'radius' \\(its options: refine\\)"):
        EngineManager(SEGMENTATION, ["classic"], "cpu", engine_options={"classic": {"radius": "3"}})


def test_the_classic_engine_takes_how_refining_clicks_are_checked():
    manager = EngineManager(SEGMENTATION, ["classic"], "cpu", engine_options={"classic": {"refine": "grow"}})
    assert manager.engine_options("classic")["refine"] == "grow"
    with pytest.raises(ValueError, match="must be one of walk-check, grow"):
        EngineManager(SEGMENTATION, ["classic"], "cpu", engine_options={"classic": {"refine": "walker"}})


def test_options_reach_the_engine_with_the_store_and_checkpoint(tmp_path):
    manager = EngineManager(SEGMENTATION, ["sam-med3d"], "cpu", weights_dir=str(tmp_path),
                            checkpoints={"sam-med3d": "/x/ft.pth"},
                            engine_options={"sam-med3d": {"max_crops": "2", "precision": "fp32"}})
    assert manager.engine_options("sam-med3d") == {
        "max_crops": 2, "precision": "fp32", "weights_dir": str(tmp_path), "checkpoint": "/x/ft.pth"}
    row = next(r for r in manager.describe() if r["name"] == "sam-med3d")
    assert row["options"] == {"max_crops": 2, "precision": "fp32"}


def test_the_environment_variable_and_the_flag_are_combined(monkeypatch):
    monkeypatch.setenv("SLICERFM_ENGINE_OPTIONS", "sam-med3d.max_crops=3")
    assert Settings().engine_options == {"sam-med3d": {"max_crops": "3"}}
    args = cli.build_parser().parse_args(["engines", "--engine-option", "sam-med3d.precision=fp16"])
    settings = settings_from_args(args)
    assert settings.engine_options == {"sam-med3d": {"max_crops": "3", "precision": "fp16"}}


def test_serve_exits_with_the_reason_on_a_malformed_option(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["serve", "--engine-option", "sam-med3d.max_crops"])
    assert "ENGINE.KEY=VALUE" in str(caught.value.code)


def test_serve_exits_with_the_reason_on_a_value_the_engine_refuses(monkeypatch):
    monkeypatch.setattr("slicerfm_backend.drain.DrainingServer.run",
                        lambda *a, **k: pytest.fail("the server must not start"))
    code = cli.main(["serve", "--engines", "sam-med3d", "--engine-option", "sam-med3d.precision=int8"])
    assert code == 2


def test_evaluate_hands_checkpoint_and_options_to_the_server_it_starts(monkeypatch):
    monkeypatch.setenv("SLICERFM_CHECKPOINTS", "classic=/a.pth")
    monkeypatch.delenv("SLICERFM_ENGINE_OPTIONS", raising=False)
    args = argparse.Namespace(checkpoint=["sam-med3d=/ft.pth"], engine_option=["sam-med3d.max_crops=2"])
    env = backend_environment(args)
    assert env["SLICERFM_CHECKPOINTS"] == "classic=/a.pth,sam-med3d=/ft.pth"
    assert env["SLICERFM_ENGINE_OPTIONS"] == "sam-med3d.max_crops=2"
    assert Settings(_env_file=None, checkpoints=env["SLICERFM_CHECKPOINTS"]).checkpoints == {
        "classic": "/a.pth", "sam-med3d": "/ft.pth"}
