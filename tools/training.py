"""Train only when the training inputs changed: `python -m tools.training [--force]`.

The fingerprint is a hash of the contents of `data/`, `domain.yml` and `config.yml` (not their
timestamps), and the model file is named after it, so an unchanged bot never retrains and a
changed one can never be served by a stale model.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
from pathlib import Path

from tools.paths import MODELS, RASA_BIN, REPO

TRAINING_INPUTS = ("data", "domain.yml", "config.yml")


def training_files(repo: Path = REPO) -> list[Path]:
    files: list[Path] = []
    for name in TRAINING_INPUTS:
        path = repo / name
        files.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
    return files


def fingerprint(repo: Path = REPO) -> str:
    digest = hashlib.sha256()
    for path in training_files(repo):
        digest.update(path.relative_to(repo).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def model_path(repo: Path = REPO) -> Path:
    """The model trained from the current training inputs (it may not exist yet)."""
    return MODELS / f"model-{fingerprint(repo)}.tar.gz"


def rasa_env() -> dict[str, str]:
    """The environment for Rasa commands: no telemetry (there is no internet to send it to),
    and the repository on the import path for the pipeline's own components (`rasa_ext.*`)."""
    python_path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return {
        **os.environ,
        "RASA_TELEMETRY_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": python_path,
    }


def train(force: bool = False) -> Path:
    target = model_path()
    if target.exists() and not force:
        print(f"model up to date: {target.relative_to(REPO)}")
        return target
    print(f"training {target.relative_to(REPO)} (data/, domain.yml or config.yml changed)")
    subprocess.run(
        [str(RASA_BIN), "train", "--out", str(MODELS), "--fixed-model-name", target.name[:-7]],
        cwd=REPO,
        env=rasa_env(),
        check=True,
    )
    for stale in MODELS.glob("model-*.tar.gz"):
        if stale != target:
            stale.unlink()
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="train even if nothing changed")
    parser.add_argument("--print-path", action="store_true", help="only print the model path")
    args = parser.parse_args()
    if args.print_path:
        print(model_path())
        return 0
    try:
        train(force=args.force)
    except subprocess.CalledProcessError as error:
        print(f"rasa train failed with exit code {error.returncode}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
