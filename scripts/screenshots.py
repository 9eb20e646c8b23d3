"""Save an SVG screenshot of every pane and dialog of the TUI into screenshots/.

The app runs headless over the FakeService (fixed data, fixed clock, UTC), so the
pictures are the same on every run:

    python scripts/screenshots.py            # all scenes
    python scripts/screenshots.py jobs help  # some of them
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from naq_tui.shots import SHOTS, SHOTS_BY_NAME, Shot, fixed_timezone  # noqa: E402


async def take(shot: Shot, size: tuple[int, int]) -> str:
    """The SVG of one scene at one terminal size."""
    app = shot.app()
    async with app.run_test(size=size) as pilot:
        await shot.run(pilot)
        return app.export_screenshot(title=f"naq {shot.name}")


async def main(names: list[str], out: Path) -> None:
    fixed_timezone()
    out.mkdir(parents=True, exist_ok=True)
    shots = [SHOTS_BY_NAME[name] for name in names] if names else list(SHOTS)
    for shot in shots:
        for width, height in shot.sizes:
            path = out / f"{shot.name}-{width}x{height}.svg"
            path.write_text(await take(shot, (width, height)), encoding="utf-8")
            print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"scenes: {', '.join(SHOTS_BY_NAME)}")
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    args = parser.parse_args()
    unknown = [name for name in args.names if name not in SHOTS_BY_NAME]
    if unknown:
        parser.error(f"unknown scene(s): {', '.join(unknown)}")
    asyncio.run(main(args.names, args.out))
