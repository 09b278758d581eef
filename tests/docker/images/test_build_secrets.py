"""Every image: no build secret left behind (where the build mounted them, pip's
configuration files, the image history)."""

from __future__ import annotations

from tests.docker.engine import TARGETS, BuildResult, Engine, image_name
from tests.docker.images.support import needs_images

pytestmark = needs_images


def test_no_build_secret_is_left_in_an_image(
    engine: Engine, images: dict[str, BuildResult]
) -> None:
    for target in TARGETS:
        # Where the build mounted them (an empty mount point may stay), and where pip
        # would read a configuration.
        result = engine.run(
            "run", "--rm", "--network", "none", "--entrypoint", "sh", image_name(target),
            "-c", "find /run/secrets /etc/pip.conf /etc/xdg/pip /root/.config/pip"
                  " -type f 2>/dev/null; true",
        )  # fmt: skip
        assert result.stdout.strip() == "", (target, result.stdout)
        history = engine.run("history", "--no-trunc", image_name(target)).stdout
        assert "ca-certificates.crt" not in history and "cert =" not in history
