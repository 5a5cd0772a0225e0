"""``openriff ui``: the running app driven through its HTTP API (gradio_client).

Each mode's audio is compared with the Python API's for the same request and seed: the
page is a thin layer, so the two must be the same stem (within 24-bit rounding).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import soundfile as sf
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from openriff.pipeline.generation.pipeline import AccompanimentPipeline
from openriff.pipeline.ui import studio as studio_module
from openriff.pipeline.ui.app import build_app
from openriff.pipeline.ui.studio import Cancelled, Request, Studio

RATE = 48_000
QUANTUM = 2.0**-22  # two steps of 24-bit audio


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(bundle: Path) -> Iterator[tuple[Client, Studio]]:
    studio = Studio(AccompanimentPipeline.from_pretrained(bundle))
    app = build_app(studio)
    port = free_port()
    app.queue(default_concurrency_limit=1).launch(
        prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True
    )
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False), studio
    finally:
        app.close()


def tone(path: Path, seconds: float, freq: float = 220.0) -> Path:
    t = np.arange(round(seconds * RATE)) / RATE
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), RATE)
    return path


def page(**given: Any) -> list[Any]:
    """The ``/run`` inputs in the page's order, with the page's defaults."""
    values: dict[str, Any] = {
        "mode": "generate", "context": None, "stem": None, "prompt": "", "reference": None,
        "duration": 8.0, "start": 0.0, "end": 2.0, "strength": 0.5, "bars": 4, "bpm": 120.0,
        "points": 3, "start_prompt": "", "end_prompt": "", "start_ref": None, "end_ref": None,
        "parts": "", "style": None, "steps": 2, "sampler": "heun", "cfg_context": 1.25,
        "cfg_clap": 1.25, "cfg_rescale": 0.0, "width": 0.4, "style_strength": 1.0,
        "clip_estimate": True, "use_bridge": True, "candidates": 1, "seed": 7,
    }  # fmt: skip
    unknown = set(given) - set(values)
    assert not unknown, unknown
    values.update(given)
    for key in ("context", "stem", "reference", "start_ref", "end_ref", "style"):
        if values[key] is not None:
            values[key] = handle_file(str(values[key]))
    return list(values.values())


def stems_of(result: tuple[Any, ...]) -> list[np.ndarray]:
    """The visible stem players' audio ``[C, S]``."""
    players = result[:4]
    paths = [p["value"] for p in players if isinstance(p, dict) and p.get("visible")]
    return [sf.read(path, dtype="float32", always_2d=True)[0].T for path in paths]


OPTIONS = {"steps": 2, "sampler": "heun", "seed": 7, "stereo_width": 0.4}


def test_every_mode_returns_the_python_apis_audio(
    served: tuple[Client, Studio], tmp_path: Path
) -> None:
    client, studio = served
    api = studio.pipeline
    context, stem = tone(tmp_path / "context.wav", 1.0), tone(tmp_path / "stem.wav", 1.0, 110.0)
    cases = [
        (dict(mode="generate", context=context), lambda: api.generate(str(context), **OPTIONS)),
        (dict(mode="generate", duration=0.6, prompt="warm bass"),
         lambda: api.generate(prompt="warm bass", duration=0.6, **OPTIONS)),
        (dict(mode="inpaint", stem=stem, start=0.25, end=0.5, context=context),
         lambda: api.inpaint(str(stem), 0.25, 0.5, str(context), **OPTIONS)),
        (dict(mode="vary", stem=stem, strength=0.5),
         lambda: api.vary(str(stem), 0.5, **OPTIONS)),
        (dict(mode="loop", bars=1, bpm=240.0), lambda: api.loop(1, 240.0, **OPTIONS)),
        (dict(mode="interpolate", start_prompt="bass", end_ref=stem, points=2, duration=0.5),
         lambda: api.interpolate("bass", str(stem), points=2, duration=0.5, **OPTIONS)),
        (dict(mode="song", parts="soft bass\nloud bass", duration=0.5),
         lambda: api.song(["soft bass", "loud bass"], duration=0.5, **OPTIONS)),
        (dict(mode="generate", context=context, candidates=2),
         lambda: api.generate(str(context), **{**OPTIONS, "num_candidates": 2})),
    ]  # fmt: skip
    for given, call in cases:
        result = client.predict(*page(**given), api_name="/run")
        got, expected = stems_of(result), call().audio
        assert len(got) == len(expected), given
        for a, b in zip(got, expected, strict=True):
            assert a.shape == b.shape, (given, a.shape, b.shape)
            assert np.abs(a - b).max() <= QUANTUM, given
        if given["mode"] == "loop":
            assert got[0].shape[-1] == RATE  # 1 bar of 4 beats at 240 bpm: 1 s
        # Players, mix players, plot, downloads, summary.
        mixes = [m for m in result[4:8] if isinstance(m, dict) and m.get("visible")]
        assert len(mixes) == len(got)
        assert Path(result[8]).suffix == ".png"
        assert {Path(p).suffix for p in result[9]} == {".wav", ".flac", ".png", ".json"}
        assert f"seed {OPTIONS['seed']}" in result[10]


def test_a_mix_becomes_the_next_context(served: tuple[Client, Studio], tmp_path: Path) -> None:
    # Building a song layer by layer: candidate 2's mix (context and its stem) as context.
    client, _ = served
    context = tone(tmp_path / "context.wav", 1.0)
    result = client.predict(*page(context=context, candidates=2), api_name="/run")
    mixes = [m["value"] for m in result[4:8] if isinstance(m, dict) and m.get("visible")]
    chosen = client.predict(2, *[handle_file(m) for m in mixes], None, None,
                            api_name="/use_as_context")  # fmt: skip
    a = sf.read(chosen, dtype="float32")[0]
    b = sf.read(mixes[1], dtype="float32")[0]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, sf.read(mixes[0], dtype="float32")[0])
    with pytest.raises(AppError, match="there is no candidate 3 in the last run"):
        client.predict(3, *[handle_file(m) for m in mixes], None, None,
                       api_name="/use_as_context")  # fmt: skip


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (dict(mode="generate", duration=None), "without a context, give a duration"),
        (dict(steps=0), "Value 0 is less than minimum value 1"),  # the page's own range
        (dict(mode="inpaint", stem="STEM", start=1.0, end=0.5), "the region must have start < end"),
        (dict(mode="inpaint"), "inpainting needs the stem to edit"),
        (dict(mode="song", parts="  \n "), "a song needs one prompt per part"),
        (dict(mode="interpolate", start_prompt="a"), "interpolation needs a start and an end"),
        (dict(sampler="consistency"), "consistency is not in the list of choices"),
        (dict(mode="vary", stem="STEM", strength=0.0), "Value 0.0 is less than minimum value"),
    ],
)
def test_errors_come_back_as_the_librarys_message(
    served: tuple[Client, Studio], given: dict[str, Any], message: str, tmp_path: Path
) -> None:
    client, _ = served
    if given.get("stem") == "STEM":
        given = {**given, "stem": tone(tmp_path / "stem.wav", 1.0)}
    with pytest.raises(AppError) as caught:
        client.predict(*page(**given), api_name="/run")
    assert message in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_bad_uploads_are_refused_in_one_line(
    served: tuple[Client, Studio], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, studio = served
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wave file")
    with pytest.raises(AppError, match="the context is not audio that soundfile can read"):
        client.predict(*page(context=broken), api_name="/run")
    long = tone(tmp_path / "long.wav", 1.0)
    monkeypatch.setattr(studio_module, "MAX_UPLOAD_SECONDS", 0.5)
    with pytest.raises(ValueError, match=r"the context is 1 s long; uploads are limited to 0 s"):
        studio.run(Request(context=str(long)))
    monkeypatch.setattr(studio_module, "MAX_UPLOAD_BYTES", 1000)
    with pytest.raises(ValueError, match="the stem is 0 MB; uploads are limited to 0 MB"):
        studio.run(Request(mode="vary", stem=str(long)))


def test_a_run_is_cancelled_between_steps(served: tuple[Client, Studio], tmp_path: Path) -> None:
    _, studio = served
    seen: list[tuple[str, int, int]] = []

    def progress(stage: str, done: int, total: int) -> None:
        seen.append((stage, done, total))
        if done == 2:
            studio.cancel()

    with pytest.raises(Cancelled):
        studio.run(Request(duration=0.5, options={"steps": 6, "seed": 1}), progress)
    assert seen[-1] == ("sampling", 2, seen[-1][2])  # stopped at the next step
    assert studio.pipeline.on_progress is None
    # The next run is not cancelled, and reports sampling then decoding.
    seen.clear()
    done = studio.run(
        Request(duration=0.5, options={"steps": 2, "seed": 1}),
        lambda stage, i, n: seen.append((stage, i, n)),
    )
    assert done.stems[0].is_file()
    assert next(s for s, _, _ in seen) == "sampling"
    assert ("sampling", seen[0][2], seen[0][2]) in seen


def test_a_bundle_without_clap_disables_its_controls_with_the_reason() -> None:
    studio = Studio(AccompanimentPipeline.from_pretrained())  # the shipped, CLAP-free model
    reason = studio.clap_unavailable()
    assert reason is not None
    assert "without CLAP" in reason or "CLAP checkpoint" in reason
    with pytest.raises(ValueError, match=f"song needs prompts or references: {reason}"):
        studio.run(Request(mode="song", parts=("bass",), duration=1.0))
    assert studio.recommended()["steps"] == studio.pipeline.recommended.get("steps", 30)
    app = build_app(studio)
    assert app.analytics_enabled is False  # the page reports nothing to gradio's servers
    config = app.get_config_file()
    labels = {c["props"].get("label"): c["props"] for c in config["components"]
              if "label" in c.get("props", {})}  # fmt: skip
    assert labels["prompt (text, CLAP)"]["interactive"] is False
    assert labels["prompt (text, CLAP)"]["info"] == reason
    modes = dict((v, k) for k, v in labels["mode"]["choices"])
    assert modes["song"] == f"song (unavailable: {reason})"
    assert modes["generate"] == "generate"


class FakeApp:
    """Stands in for the gradio app: records how it would be served."""

    launched: ClassVar[dict[str, Any]] = {}

    def queue(self, **kwargs: Any) -> FakeApp:
        self.launched["queue"] = kwargs
        return self

    def launch(self, **kwargs: Any) -> None:
        self.launched.update(kwargs)


@pytest.mark.parametrize(("host", "warned"), [("127.0.0.1", False), ("0.0.0.0", True)])
def test_the_command_binds_locally_unless_told_and_then_warns(
    bundle: Path, host: str, warned: bool, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from openriff.pipeline.cli import main
    from openriff.pipeline.ui import app as app_module

    FakeApp.launched = {}
    monkeypatch.setattr(app_module, "build_app", lambda studio: FakeApp())
    assert main(["ui", "--bundle", str(bundle), "--host", host, "--port", "7999"]) == 0
    launched = FakeApp.launched
    assert (launched["server_name"], launched["server_port"]) == (host, 7999)
    assert launched["share"] is False  # no share link unless asked
    assert launched["max_file_size"] == "200mb"
    assert launched["queue"] == {"default_concurrency_limit": 1}
    err = capsys.readouterr().err
    assert ("other machines can reach this page" in err) is warned


def test_the_command_refuses_a_bad_port_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from openriff.pipeline.cli import main

    assert main(["ui", "--port", "70000"]) == 2
    err = capsys.readouterr().err
    assert "argument --port: must be an integer in [1, 65535], got 70000" in err
    assert "Traceback" not in err
