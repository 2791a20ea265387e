"""Running models from the generated form in Chromium, and the predictions pages.

Each model is pushed with the CLI (in a thread: the browser shares the test's event loop) and
run from its Run tab as a person would: fill in, press Run, watch status, logs and output.
"""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect
from typer.testing import CliRunner

from cogplane.cli.devstack import DevStack
from cogplane.cli.main import app

pytestmark = pytest.mark.e2e
Shoot = Callable[[Page, str], Coroutine[Any, Any, Path]]
EXAMPLES = Path(__file__).parents[3] / "examples"
SLOW = 180_000  # ms: the first run of a version waits for its instance to start

IMAGE_PREDICTOR = '''
"""Draws a square PNG with the standard library only."""

import struct
import tempfile
import zlib

from cog import BaseRunner, Input, Path


def chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def png(size: int) -> bytes:
    row = b"\\x00" + bytes([200, 40, 90]) * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    pixels = zlib.compress(row * size)
    signature = b"\\x89PNG\\r\\n\\x1a\\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


class Predictor(BaseRunner):
    def run(self, size: int = Input(description="Side", default=16, ge=1, le=256)) -> Path:
        print(f"drawing {size}x{size}")
        out = Path(tempfile.mkdtemp()) / "square.png"
        out.write_bytes(png(size))
        return out
'''
AUDIO_PREDICTOR = '''
"""Writes a short tone as a WAV file with the standard library only."""

import math
import struct
import tempfile
import wave

from cog import BaseModel, BaseRunner, Input, Path


class Output(BaseModel):
    sound: Path
    details: dict


class Predictor(BaseRunner):
    def run(self, hertz: int = Input(description="Pitch", default=440, ge=50, le=2000)) -> Output:
        out = Path(tempfile.mkdtemp()) / "tone.wav"
        with wave.open(str(out), "wb") as sound:
            sound.setnchannels(1)
            sound.setsampwidth(2)
            sound.setframerate(8000)
            frames = (int(9000 * math.sin(2 * math.pi * hertz * i / 8000)) for i in range(2400))
            sound.writeframes(b"".join(struct.pack("<h", f) for f in frames))
        return Output(sound=out, details={"hertz": hertz, "note": "<b>tone</b>"})
'''
COG_YAML = 'build:\n  python_version: "3.11"\npredict: "predict.py:Predictor"\n'


def cli(stack: DevStack, *args: str) -> str:
    assert stack.token is not None
    env = {"COGPLANE_URL": stack.gateway_url, "COGPLANE_TOKEN": stack.token}
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


_pushed: dict[tuple[str, str], str] = {}


async def pushed(stack: DevStack, project: Path) -> str:
    """A public model of the development user with one version of ``project`` (pushed once)."""
    key = (stack.gateway_url, str(project))
    if key not in _pushed:
        model = f"dev/{project.name}-{uuid.uuid4().hex[:6]}"
        await asyncio.to_thread(cli, stack, "models", "create", model, "--visibility", "public")
        await asyncio.to_thread(cli, stack, "push", model, "--path", str(project))
        _pushed[key] = model
    return _pushed[key]


def project(root: Path, name: str, predictor: str) -> Path:
    found = root / name
    found.mkdir()
    (found / "cog.yaml").write_text(COG_YAML)
    (found / "predict.py").write_text(predictor)
    return found


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny models written here: one draws a PNG, one writes a WAV and some JSON."""
    root = tmp_path_factory.mktemp("projects")
    return {
        "image": project(root, "image", IMAGE_PREDICTOR),
        "audio": project(root, "audio", AUDIO_PREDICTOR),
    }


async def run_form(page: Page, model: str) -> None:
    await page.goto(f"/models/{model}")
    await expect(page.get_by_role("button", name="Run", exact=True)).to_be_enabled()


async def finished(page: Page, status: str = "succeeded") -> None:
    await expect(page.locator("#run-status .badge")).to_have_text(status, timeout=SLOW)


async def test_run_a_string_model_and_see_its_prediction(
    signed_in: Page, stack: DevStack, shoot: Shoot
) -> None:
    page = signed_in
    model = await pushed(stack, EXAMPLES / "hello")
    await run_form(page, model)
    name = page.get_by_label("Name", exact=True)
    await expect(name).to_have_value("world")  # the default, filled in
    await expect(page.locator("#desc-name")).to_have_text("Who to greet")
    await name.fill("Ada <b>Lovelace</b>")
    await page.get_by_role("button", name="Run", exact=True).click()
    await finished(page)
    await expect(page.locator("#output .output-text")).to_have_text("Hello, Ada <b>Lovelace</b>!")
    await expect(page.locator("#output b")).to_have_count(0)  # text, never markup
    await expect(page.locator("#logs")).to_contain_text("greeting Ada <b>Lovelace</b>")
    await expect(page.locator("#run-metrics")).to_contain_text("Ran for")
    await shoot(page, "model-run")

    await page.get_by_role("link", name="Prediction page").click()
    await page.wait_for_url(re.compile(r".*/p/\w+"))
    prediction_id = page.url.rsplit("/", 1)[-1]
    await expect(page.locator("#output .output-text")).to_have_text("Hello, Ada <b>Lovelace</b>!")
    await expect(page.locator("dl.inputs")).to_contain_text("Ada <b>Lovelace</b>")
    await expect(page.locator(".meta")).to_contain_text("source web")
    await expect(page.locator("#logs")).to_contain_text("greeting")
    await expect(page.locator("table.timings")).to_contain_text("Run")
    await shoot(page, "prediction")

    await page.goto("/predictions")
    await page.get_by_label("Source").select_option("web")
    await page.get_by_label("Model").fill(model)
    await page.get_by_role("button", name="Filter").click()
    await page.wait_for_url(re.compile(r".*/predictions\?.*source=web"))
    row = page.locator("table.predictions tbody tr").first
    await expect(row).to_contain_text(prediction_id)
    await expect(row).to_contain_text("succeeded")
    await shoot(page, "predictions")
    await page.get_by_label("Status").select_option("failed")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("#no-predictions")).to_be_visible()


async def test_a_streaming_model_streams_in_without_layout_shift(
    signed_in: Page, stack: DevStack, shoot: Shoot
) -> None:
    page = signed_in
    model = await pushed(stack, EXAMPLES / "stream")
    await run_form(page, model)
    words = [f"w{i}" for i in range(8)]
    await page.get_by_label("Prompt", exact=True).fill(" ".join(words))
    await page.get_by_label("Delay", exact=True).fill("0.4")
    await expect(page.locator("#range-delay")).to_have_value("0.4")  # the slider follows
    await page.evaluate(
        """() => { window.__shift = 0; new PerformanceObserver((list) => {
            for (const e of list.getEntries()) if (!e.hadRecentInput) window.__shift += e.value;
        }).observe({ type: "layout-shift", buffered: false }); }"""
    )
    await page.get_by_role("button", name="Run", exact=True).click()
    # Part of the text shows while the model is still producing the rest.
    text = page.locator("#output .output-text")
    await expect(text).to_contain_text("w1", timeout=SLOW)
    assert await page.locator("#run-status .badge").text_content() in ("starting", "processing")
    assert "w7" not in (await text.text_content() or "")
    await finished(page)
    await expect(text).to_have_text(" ".join(words) + " ")
    await expect(page.locator("#logs")).to_contain_text("token 7")
    await shoot(page, "model-run-stream")
    shift = await page.evaluate("window.__shift")
    assert shift < 0.05, f"the page moved while the output streamed in (CLS {shift})"


async def test_an_image_output_is_shown_as_an_image(
    signed_in: Page, stack: DevStack, shoot: Shoot, projects: dict[str, Path]
) -> None:
    page = signed_in
    model = await pushed(stack, projects["image"])
    await run_form(page, model)
    await page.get_by_label("Size", exact=True).fill("24")
    await page.get_by_role("button", name="Run", exact=True).click()
    await finished(page)
    image = page.get_by_role("img", name="Output image")
    await expect(image).to_be_visible()
    assert (await image.get_attribute("src") or "").startswith("data:image/png;base64,")
    assert await image.evaluate("(img) => img.naturalWidth") == 24
    await expect(page.get_by_role("link", name=re.compile("Download output"))).to_be_visible()
    await shoot(page, "model-run-image")


async def test_an_object_output_shows_audio_and_json(
    signed_in: Page, stack: DevStack, shoot: Shoot, projects: dict[str, Path]
) -> None:
    page = signed_in
    model = await pushed(stack, projects["audio"])
    await run_form(page, model)
    await page.get_by_role("button", name="Run", exact=True).click()
    await finished(page)
    output = page.locator("#output")
    await expect(output.locator("dt")).to_have_text(["sound", "details"])
    audio = page.get_by_label("Output audio")
    assert (await audio.get_attribute("src") or "").startswith("data:audio/")
    duration = await audio.evaluate(
        """(a) => a.readyState >= 1 ? a.duration : new Promise((done) =>
            a.addEventListener("loadedmetadata", () => done(a.duration)))"""
    )
    assert abs(duration - 0.3) < 0.01
    details = output.locator(".output-json")
    await expect(details).to_contain_text('"hertz": 440')
    await expect(details).to_contain_text('"note": "<b>tone</b>"')
    await expect(output.locator("b")).to_have_count(0)
    await shoot(page, "model-run-audio")


async def test_a_file_input_is_uploaded_and_the_file_output_downloadable(
    signed_in: Page, stack: DevStack, shoot: Shoot
) -> None:
    page = signed_in
    model = await pushed(stack, EXAMPLES / "files")
    await run_form(page, model)
    picker = page.get_by_label("File", exact=True)
    assert await picker.get_attribute("accept") == "text/*"
    await picker.set_input_files(
        files=[{"name": "note.txt", "mimeType": "text/plain", "buffer": b"quiet words\n"}]
    )
    await page.get_by_role("button", name="Run", exact=True).click()
    await finished(page)
    link = page.get_by_role("link", name=re.compile("Download"))
    href = await link.get_attribute("href") or ""
    assert href.startswith("data:text/plain")
    assert base64.b64decode(href.split(",", 1)[1]) == b"QUIET WORDS\n"
    await shoot(page, "model-run-file")
    # The prediction's input is the uploaded file's URL on this platform.
    await page.get_by_role("link", name="Prediction page").click()
    await expect(page.locator("dl.inputs a")).to_have_attribute(
        "href", re.compile(re.escape(stack.gateway_url) + r"/v1/files/\w+$")
    )


async def test_cancel_a_running_prediction(signed_in: Page, stack: DevStack, shoot: Shoot) -> None:
    page = signed_in
    model = await pushed(stack, EXAMPLES / "slow")
    await run_form(page, model)
    await page.get_by_label("Seconds", exact=True).fill("120")
    await page.get_by_role("button", name="Run", exact=True).click()
    cancel = page.get_by_role("button", name="Cancel")
    await expect(cancel).to_be_enabled()
    await expect(page.locator("#logs")).to_contain_text("tick 1", timeout=SLOW)
    await cancel.click()
    await finished(page, "canceled")
    await expect(cancel).to_be_disabled()
    await expect(page.locator("#logs")).to_contain_text("canceled, cleaning up")
    await shoot(page, "model-run-canceled")


async def test_run_tab_fits_a_phone(signed_in: Page, stack: DevStack, shoot: Shoot) -> None:
    page = signed_in
    model = await pushed(stack, EXAMPLES / "hello")
    await page.set_viewport_size({"width": 375, "height": 740})
    await run_form(page, model)
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    # Keyboard only: tab to the input, type, tab on to Run, press Enter.
    await page.get_by_label("Name", exact=True).focus()
    await page.keyboard.press("Control+A")
    await page.keyboard.type("phone")
    await page.keyboard.press("Tab")
    focused = await page.evaluate("document.activeElement.id")
    assert focused == "run-button"
    await page.keyboard.press("Enter")
    await finished(page)
    await expect(page.locator("#output")).to_contain_text("phone")
    await shoot(page, "model-run-phone")
