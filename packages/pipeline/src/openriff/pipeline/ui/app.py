"""The Gradio page of ``openriff ui``: controls in, :class:`~.studio.Studio` runs, files out.

No generation logic lives here: :func:`build_app` lays out the controls (defaults from the
bundle's recommendations, controls the bundle cannot use disabled with the reason), and
one event, ``/run`` in the HTTP API, packs them into a :class:`~.studio.Request`. Errors
come back as the library's one-line message in the page (``gr.Error``), never a traceback.
"""

from __future__ import annotations

import random
from typing import Any

from openriff.pipeline.ui.studio import (
    CLAP_MODES,
    MAX_CANDIDATES,
    MAX_UPLOAD_BYTES,
    MODES,
    Cancelled,
    Outcome,
    Request,
    Studio,
)

MODE_HELP = {
    "generate": "a stem that fits the context (or, without one, the given duration)",
    "inpaint": "regenerate a time range of a stem, keeping the rest",
    "vary": "a variation of a stem, closer to it with a lower strength",
    "loop": "a seamless loop of N bars at a tempo",
    "interpolate": "stems between two prompts or references",
    "song": "a whole song, one part per prompt",
}


def build_app(studio: Studio) -> Any:
    """The page over ``studio`` (a ``gradio.Blocks``; call ``.launch()`` on it)."""
    import gradio as gr

    clap = studio.clap_unavailable()
    recommended = studio.recommended()
    stereo = studio.pipeline.model.codec.channels != 1
    no_bridge = studio.pipeline.model.bridge is None
    modes = [
        (f"{name} (unavailable: {clap})" if clap and name in CLAP_MODES else name, name)
        for name in MODES
    ]
    # Nothing leaves the machine: gradio's usage analytics stay off.
    with gr.Blocks(title="OpenRiff", analytics_enabled=False) as app:
        gr.Markdown(
            "# OpenRiff\nAn accompaniment stem that fits your music. Upload or record a "
            "context, choose a mode, generate."
            + (f"\n\n*Prompts and references are off: {clap}.*" if clap else "")
        )
        with gr.Row():
            with gr.Column(scale=1):
                context = gr.Audio(
                    sources=["upload", "microphone"],
                    type="filepath",
                    label="context (the music to accompany)",
                    elem_id="context",
                )
                mode = gr.Radio(modes, value="generate", label="mode", info=MODE_HELP["generate"])
                duration = gr.Number(
                    8.0, label="seconds to generate without a context", minimum=0.1
                )
                with gr.Group(visible=False) as stem_group:
                    stem = gr.Audio(sources=["upload"], type="filepath", label="stem to edit")
                    with gr.Row():
                        start = gr.Number(0.0, label="inpaint from (s)")
                        end = gr.Number(2.0, label="inpaint to (s)")
                    strength = gr.Slider(0.05, 1.0, 0.5, step=0.05, label="variation strength")
                with gr.Group(visible=False) as loop_group, gr.Row():
                    bars = gr.Number(4, precision=0, minimum=1, label="bars")
                    bpm = gr.Number(120.0, minimum=20, maximum=400, label="bpm")
                with gr.Group(visible=False) as clap_group:
                    with gr.Row():
                        start_prompt = gr.Textbox(label="from prompt", interactive=not clap)
                        end_prompt = gr.Textbox(label="to prompt", interactive=not clap)
                    with gr.Row():
                        start_ref = gr.Audio(
                            sources=["upload"],
                            type="filepath",
                            label="or from a reference",
                            interactive=not clap,
                        )
                        end_ref = gr.Audio(
                            sources=["upload"],
                            type="filepath",
                            label="or to a reference",
                            interactive=not clap,
                        )
                    points = gr.Number(3, precision=0, minimum=2, label="interpolation points")
                    parts = gr.Textbox(
                        lines=4, label="song parts: one prompt per line", interactive=not clap
                    )
                prompt = gr.Textbox(
                    label="prompt (text, CLAP)",
                    interactive=not clap,
                    info=clap or "describe the stem",
                )
                reference = gr.Audio(
                    sources=["upload"],
                    type="filepath",
                    interactive=not clap,
                    label="reference recording (CLAP)" + (f": {clap}" if clap else ""),
                )
                style = gr.Audio(
                    sources=["upload"],
                    type="filepath",
                    label="style reference (grounds the timbre)",
                )
            with gr.Column(scale=1):
                with gr.Accordion("sampling (the bundle's recommended values)", open=False):
                    steps = gr.Slider(1, 200, recommended["steps"], step=1, label="steps")
                    sampler = gr.Dropdown(
                        studio.samplers(), value=recommended["sampler"], label="sampler"
                    )
                    cfg_context = gr.Slider(
                        0, 20, recommended["cfg_context"], step=0.05, label="context guidance"
                    )
                    cfg_clap = gr.Slider(
                        0,
                        20,
                        recommended["cfg_clap"],
                        step=0.05,
                        label="CLAP guidance",
                        interactive=not clap,
                        info=clap,
                    )
                    cfg_rescale = gr.Slider(
                        0, 1, recommended["cfg_rescale"], step=0.05, label="CFG rescale"
                    )
                    width = gr.Slider(
                        0,
                        1,
                        0.0 if stereo else recommended["stereo_width"],
                        step=0.05,
                        label="pseudo-stereo width",
                        interactive=not stereo,
                        info="a stereo codec makes stereo itself" if stereo else None,
                    )
                    style_strength = gr.Slider(0, 1, 1.0, step=0.05, label="style strength")
                    clip_estimate = gr.Checkbox(True, label="clip estimates to the codec's range")
                    use_bridge = gr.Checkbox(
                        not (clap or no_bridge),
                        label="prompts through the bridge prior",
                        interactive=not (clap or no_bridge),
                    )
                candidates = gr.Slider(1, MAX_CANDIDATES, 1, step=1, label="candidates")
                with gr.Row():
                    seed = gr.Number(0, precision=0, minimum=0, label="seed")
                    new_seed = gr.Button("new seed", size="sm")
                with gr.Row():
                    run = gr.Button("Generate", variant="primary", elem_id="generate")
                    cancel = gr.Button("Cancel", variant="stop")
                status = gr.Markdown(elem_id="status")
        with gr.Row():
            stems = [
                gr.Audio(
                    type="filepath",
                    label=f"stem {i + 1}",
                    visible=i == 0,
                    interactive=False,
                    elem_id=f"stem-{i + 1}",
                )
                for i in range(MAX_CANDIDATES)
            ]
        with gr.Row():
            mixes = [
                gr.Audio(type="filepath", label=f"mix {i + 1}", visible=i == 0, interactive=False)
                for i in range(MAX_CANDIDATES)
            ]
        plot = gr.Image(
            type="filepath", label="spectrograms", interactive=False, elem_id="spectrograms"
        )
        with gr.Row():
            downloads = gr.File(file_count="multiple", label="downloads (WAV, FLAC, settings)")
            with gr.Column():
                chosen = gr.Slider(1, MAX_CANDIDATES, 1, step=1, label="candidate")
                layer = gr.Button("use this stem's mix as the context (add another layer)")

        def on_mode(name: str) -> list[Any]:
            return [
                gr.update(info=MODE_HELP[name]),
                gr.update(visible=name in ("inpaint", "vary")),
                gr.update(visible=name == "loop"),
                gr.update(visible=name in CLAP_MODES),
                gr.update(visible=name in ("generate", "interpolate", "song")),
            ]

        mode.change(
            on_mode,
            mode,
            [mode, stem_group, loop_group, clap_group, duration],
            api_visibility="private",
        )
        new_seed.click(lambda: random.randrange(2**31), None, seed, api_visibility="private")

        def generate(*values: Any, progress: Any = gr.Progress()) -> list[Any]:  # noqa: B008
            request = _request(*values)

            def report(stage: str, done: int, total: int) -> None:
                progress((done, total), desc=stage)

            try:
                outcome = studio.run(request, report)
            except Cancelled:
                raise gr.Error("cancelled") from None
            except (ValueError, OSError, RuntimeError) as error:  # the library's message
                raise gr.Error(str(error).splitlines()[0] or type(error).__name__) from None
            return _outputs(outcome)

        inputs = [
            mode,
            context,
            stem,
            prompt,
            reference,
            duration,
            start,
            end,
            strength,
            bars,
            bpm,
            points,
            start_prompt,
            end_prompt,
            start_ref,
            end_ref,
            parts,
            style,
            steps,
            sampler,
            cfg_context,
            cfg_clap,
            cfg_rescale,
            width,
            style_strength,
            clip_estimate,
            use_bridge,
            candidates,
            seed,
        ]
        outputs = [*stems, *mixes, plot, downloads, status]
        event = run.click(generate, inputs, outputs, api_name="run")
        cancel.click(studio.cancel, None, None, cancels=[event], api_visibility="private")

        def as_context(which: float, *players: str | None) -> str:
            """The chosen candidate's mix (context and stem) as the next context."""
            index = int(which) - 1
            if not 0 <= index < len(players) or not players[index]:
                raise gr.Error(f"there is no candidate {index + 1} in the last run")
            return str(players[index])

        layer.click(as_context, [chosen, *mixes], context, api_name="use_as_context")
    return app


def _request(
    mode: str,
    context: str | None,
    stem: str | None,
    prompt: str | None,
    reference: str | None,
    duration: float | None,
    start: float,
    end: float,
    strength: float,
    bars: float,
    bpm: float,
    points: float,
    start_prompt: str | None,
    end_prompt: str | None,
    start_ref: str | None,
    end_ref: str | None,
    parts: str | None,
    style: str | None,
    steps: float,
    sampler: str,
    cfg_context: float,
    cfg_clap: float,
    cfg_rescale: float,
    width: float,
    style_strength: float,
    clip_estimate: bool,
    use_bridge: bool,
    candidates: float,
    seed: float | None,
) -> Request:
    """The page's values as a :class:`~.studio.Request` (numbers from sliders as ints)."""
    options = {
        "steps": int(steps),
        "sampler": sampler,
        "cfg_context": float(cfg_context),
        "cfg_clap": float(cfg_clap),
        "cfg_rescale": float(cfg_rescale),
        "stereo_width": float(width),
        "style_reference": style or None,
        "style_strength": float(style_strength),
        "clip_estimate": bool(clip_estimate),
        "use_bridge": bool(use_bridge),
        "num_candidates": int(candidates),
        "seed": None if seed is None else int(seed),
    }
    return Request(
        mode=mode,
        context=context or None,
        stem=stem or None,
        prompt=prompt,
        reference=reference or None,
        duration=duration,
        start=float(start),
        end=float(end),
        strength=float(strength),
        bars=int(bars),
        bpm=float(bpm),
        points=int(points),
        start_prompt=start_prompt,
        end_prompt=end_prompt,
        start_reference=start_ref or None,
        end_reference=end_ref or None,
        parts=tuple((parts or "").splitlines()),
        options=options,
    )


def _outputs(outcome: Outcome) -> list[Any]:
    """Players (one per stem, the rest hidden), plot, downloads and a summary."""
    import gradio as gr

    def players(paths: list[Any]) -> list[Any]:
        return [
            gr.update(value=str(paths[i]), visible=True)
            if i < len(paths)
            else gr.update(value=None, visible=False)
            for i in range(MAX_CANDIDATES)
        ]

    settings = outcome.settings
    summary = (
        f"**{settings.get('mode')}**: {len(outcome.stems)} stem(s) of "
        f"{settings.get('duration', 0):.2f} s, seed {settings.get('seed')}, "
        f"{settings.get('steps')} {settings.get('sampler')} steps"
    )
    return [
        *players(outcome.stems),
        *players(outcome.mixes),
        str(outcome.plot),
        [str(p) for p in outcome.downloads],
        summary,
    ]


def upload_limit() -> str:
    """Gradio's ``max_file_size`` for the studio's upload limit."""
    return f"{MAX_UPLOAD_BYTES // 2**20}mb"
