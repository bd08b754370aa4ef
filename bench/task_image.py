"""The task image the Docker and Kubernetes benchmarks run: this project, as the tests build it."""

from __future__ import annotations

from pathlib import Path

import cowaitlib as cw

ROOT = Path(__file__).resolve().parent.parent


def build(image: str, base_image: str) -> str:
    """Build (quietly; cached layers make a rebuild quick) and return the image name."""
    return cw.build_image(
        image=image,
        base_image=base_image,
        project_dir=ROOT,
        requirements=["matplotlib"],  # the volume example's chart
        output=lambda line: None,
    )
