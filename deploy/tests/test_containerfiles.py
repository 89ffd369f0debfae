"""Checks that need no container: the two Containerfiles stay in step, and the entry point's
token rules and argument handling (with a stand-in slicerfm-backend that prints its arguments).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

CONTAINER = Path(__file__).resolve().parents[1] / "container"
ENTRYPOINT = CONTAINER / "entrypoint.sh"


def instructions(path: Path) -> List[Tuple[str, str]]:
    """(KEYWORD, arguments) of a Containerfile, continuation lines joined, comments dropped."""
    text = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
    text = re.sub(r"\\\n\s*", " ", text)
    result = []
    for line in text.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            result.append((keyword.upper(), " ".join(arguments.split())))
    return result


def env_of(steps: List[Tuple[str, str]]) -> Dict[str, str]:
    (env,) = [arguments for keyword, arguments in steps if keyword == "ENV"]
    return dict(item.split("=", 1) for item in env.split())


def test_the_cuda_containerfile_differs_from_the_cpu_one_only_in_torch_extras_device_and_title():
    cpu, cuda = instructions(CONTAINER / "Containerfile.cpu"), instructions(CONTAINER / "Containerfile.cuda")
    differing = {"ARG EXTRAS", "ARG TORCH_INDEX_URL", "ENV", "LABEL"}

    def shared(steps):
        return [step for step in steps if not any(f"{step[0]} {step[1]}".startswith(d) for d in differing)]

    assert shared(cpu) == shared(cuda)
    assert ("ARG", "EXTRAS=\"\"") in cpu and ("ARG", "EXTRAS=\"sam,medsam,vista3d,registration\"") in cuda
    assert ("ARG", "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu") in cpu
    cpu_env, cuda_env = env_of(cpu), env_of(cuda)
    assert cpu_env["SLICERFM_DEVICE"] == "cpu" and cuda_env["SLICERFM_DEVICE"] == "cuda"
    assert {k: v for k, v in cuda_env.items() if not k.startswith("NVIDIA_") and k != "SLICERFM_DEVICE"} == \
        {k: v for k, v in cpu_env.items() if k != "SLICERFM_DEVICE"}


def test_the_images_pin_the_torch_release_of_the_backend_extras():
    pyproject = (Path(__file__).resolve().parents[2] / "backend" / "pyproject.toml").read_text()
    pins = set(re.findall(r'"torch==([^"]+)"', pyproject))
    assert len(pins) == 1, f"the extras pin different torch releases: {pins}"
    (pin,) = pins
    for name in ("Containerfile.cpu", "Containerfile.cuda"):
        assert ("ARG", f"TORCH_VERSION={pin}") in instructions(CONTAINER / name), name


@pytest.fixture
def a_fake_backend(tmp_path):
    """A `slicerfm-backend` on PATH that prints its arguments and SLICERFM_TOKEN's presence, and a
    `python` whose GPU check exits with $FAKE_TORCH_STATUS (0 GPU, 2 no torch, 3 no GPU)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "slicerfm-backend"
    fake.write_text('#!/bin/sh\necho "args: $*"\necho "env token: ${SLICERFM_TOKEN:+set}"\n')
    fake.chmod(0o755)
    python = bin_dir / "python"
    python.write_text('#!/bin/sh\nexit "${FAKE_TORCH_STATUS:-0}"\n')
    python.chmod(0o755)
    return bin_dir


def entrypoint(bin_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SLICERFM_TOKEN_FILE": "/nonexistent/token", **env}
    return subprocess.run(["sh", str(ENTRYPOINT), *args], capture_output=True, text=True, env=environment, timeout=30)


def test_serve_takes_the_token_file_from_the_secret(a_fake_backend, tmp_path):
    secret = tmp_path / "token"
    secret.write_text("s3cret\n")
    done = entrypoint(a_fake_backend, SLICERFM_TOKEN_FILE=str(secret))
    assert done.returncode == 0 and done.stdout.startswith(f"args: serve --token-file {secret}\n")


def test_options_without_a_command_mean_serve_with_those_options(a_fake_backend, tmp_path):
    secret = tmp_path / "token"
    secret.write_text("s3cret")
    done = entrypoint(a_fake_backend, "--engines", "classic,sam-med3d", SLICERFM_TOKEN_FILE=str(secret))
    assert done.stdout.startswith(f"args: serve --token-file {secret} --engines classic,sam-med3d\n")


def test_a_token_file_given_on_the_command_line_is_checked_and_passed_on(a_fake_backend, tmp_path):
    given = tmp_path / "given"
    given.write_text("s3cret")
    for args in (["serve", "--token-file", str(given)], ["serve", f"--token-file={given}"]):
        done = entrypoint(a_fake_backend, *args)
        assert done.returncode == 0 and done.stdout.startswith(f"args: {' '.join(args)}\n")
    empty = tmp_path / "empty"
    empty.write_text("\n\t ")
    done = entrypoint(a_fake_backend, "serve", "--token-file", str(empty))
    assert done.returncode == 64 and f"the token file {empty} is empty" in done.stderr
    done = entrypoint(a_fake_backend, "serve", "--token-file", str(tmp_path / "absent"))
    assert done.returncode == 64 and "does not exist" in done.stderr


def test_the_token_in_the_environment_is_accepted_when_no_file_is_mounted(a_fake_backend):
    done = entrypoint(a_fake_backend, "serve", SLICERFM_TOKEN="s3cret")
    assert done.returncode == 0 and done.stdout == "args: serve\nenv token: set\n"
    done = entrypoint(a_fake_backend, "serve", SLICERFM_TOKEN="  ")
    assert done.returncode == 64 and "no access token" in done.stderr


def test_without_any_token_serve_is_refused_and_the_message_says_how_to_give_one(a_fake_backend):
    done = entrypoint(a_fake_backend)
    assert done.returncode == 64 and done.stdout == ""
    assert "/nonexistent/token" in done.stderr and "openssl rand -hex 24" in done.stderr


def test_other_commands_pass_through_without_a_token(a_fake_backend):
    done = entrypoint(a_fake_backend, "weights", "list")
    assert done.returncode == 0 and done.stdout.startswith("args: weights list\n")


def test_a_cuda_device_needs_a_visible_gpu_before_serve_starts(a_fake_backend):
    token = {"SLICERFM_TOKEN": "s3cret"}
    done = entrypoint(a_fake_backend, "serve", SLICERFM_DEVICE="cuda", FAKE_TORCH_STATUS="0", **token)
    assert done.returncode == 0 and done.stdout.startswith("args: serve\n")
    done = entrypoint(a_fake_backend, "serve", SLICERFM_DEVICE="cuda", FAKE_TORCH_STATUS="3", **token)
    assert done.returncode == 64 and "no CUDA GPU is visible" in done.stderr and "--gpus all" in done.stderr
    done = entrypoint(a_fake_backend, "serve", "--device", "cuda:1", FAKE_TORCH_STATUS="2", **token)
    assert done.returncode == 64 and "device cuda:1 asked for, but this image has no torch" in done.stderr
    done = entrypoint(a_fake_backend, "serve", "--device=cpu", SLICERFM_DEVICE="cuda", FAKE_TORCH_STATUS="3", **token)
    assert done.returncode == 0, "an explicit --device cpu overrides the image's cuda"
