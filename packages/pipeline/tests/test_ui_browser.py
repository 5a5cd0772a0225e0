"""``openriff ui`` in a real browser: headless Chromium (Debian's chromium and
chromium-driver, which ``.ci/run`` installs) uploads a context, generates with the shipped
model, and sees the stem's player and the spectrograms.

``OPENRIFF_UI_SCREENSHOT=docs/ui.png pytest packages/pipeline/tests/test_ui_browser.py``
writes the README's screenshot.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import numpy as np
import soundfile as sf
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from openriff.pipeline.generation.pipeline import AccompanimentPipeline
from openriff.pipeline.ui.app import build_app
from openriff.pipeline.ui.studio import Studio

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromedriver")


def chord_song(path: Path, seconds: float = 6.0) -> Path:
    """A context of two chords (A minor, F major) with a click on each beat."""
    rate = 48_000
    t = np.arange(round(seconds * rate)) / rate
    chords = [(220.0, 261.63, 329.63), (174.61, 220.0, 261.63)]
    half = (t >= seconds / 2).astype(int)
    wave = sum(0.08 * np.sin(2 * np.pi * np.choose(half, [a[i] for a in chords]) * t)
               for i in range(3))  # fmt: skip
    beat = (t % 0.5) < 0.01
    wave = wave + 0.2 * beat * np.sin(2 * np.pi * 2000 * t)
    sf.write(path, np.stack([wave, wave], 1).astype(np.float32), rate)
    return path


def test_a_browser_generates_with_the_shipped_model(tmp_path: Path) -> None:
    missing = [p for p in CHROMIUM if shutil.which(p) is None]
    assert not missing, f"install Debian's chromium and chromium-driver (missing {missing})"
    app = build_app(Studio(AccompanimentPipeline.from_pretrained()))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    app.queue(default_concurrency_limit=1).launch(
        prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1400,2300"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMIUM[1]), options=options)
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(driver, 120)
        upload = wait.until(
            ec.presence_of_element_located((By.CSS_SELECTOR, "#context input[type=file]"))
        )
        upload.send_keys(str(chord_song(tmp_path / "song.wav")))
        # The uploaded context shows as a waveform player.
        wait.until(
            ec.presence_of_element_located((By.CSS_SELECTOR, "#context .waveform-container"))
        )
        driver.find_element(By.ID, "generate").click()
        # The stem's player: its waveform, and a download link to the generated WAV.
        link = wait.until(
            ec.presence_of_element_located((By.CSS_SELECTOR, "#stem-1 a[download][href]"))
        )
        assert link.get_attribute("href").endswith("/stem.wav")
        driver.find_element(By.CSS_SELECTOR, "#stem-1 .waveform-container")
        image = wait.until(
            ec.presence_of_element_located((By.CSS_SELECTOR, "#spectrograms img[src]"))
        )
        assert image.get_attribute("src")
        wait.until(lambda d: "seed" in d.find_element(By.ID, "status").text)
        assert "generate" in driver.find_element(By.ID, "status").text
        shot = Path(os.environ.get("OPENRIFF_UI_SCREENSHOT", tmp_path / "ui.png"))
        assert driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
    finally:
        driver.quit()
        app.close()
