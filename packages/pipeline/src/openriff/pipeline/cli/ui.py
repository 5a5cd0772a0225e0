"""``openriff ui``: the web UI (extra ``[ui]``), bound to this machine unless told otherwise."""

from __future__ import annotations

import argparse
import ipaddress
import sys

from openriff.latent_diffusion.flags import Number
from openriff.pipeline.cli.outputs import load_pipeline
from openriff.pipeline.cli.sampling import add_device_flags, add_model_flags, add_precision_flag


def cmd_ui(args: argparse.Namespace) -> int:
    """Load the bundle once, then serve the page until interrupted."""
    try:
        import gradio  # noqa: F401  (the [ui] extra)
    except ImportError:
        raise ValueError("openriff ui needs gradio: pip install 'openriff-pipeline[ui]'") from None
    from openriff.pipeline.ui.app import build_app, upload_limit
    from openriff.pipeline.ui.studio import Studio

    if not _is_loopback(args.host):
        print(
            f"openriff ui: warning: serving on {args.host}, so other machines can reach this "
            "page and run generations on it; use --host 127.0.0.1 to keep it local",
            file=sys.stderr,
        )
    args.quiet = True  # the page shows the progress
    studio = Studio(load_pipeline(args))
    app = build_app(studio)
    app.queue(default_concurrency_limit=1).launch(
        server_name=args.host, server_port=args.port, share=args.share,
        max_file_size=upload_limit(), show_error=False, inbrowser=False,
    )  # fmt: skip
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def add_ui_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``ui`` to ``openriff``'s subparsers."""
    p = sub.add_parser("ui", help="generate in a web browser (needs the [ui] extra)")
    add_model_flags(p)
    add_device_flags(p)
    add_precision_flag(p)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to serve on (default: 127.0.0.1, this machine only)")  # fmt: skip
    p.add_argument(
        "--port", type=Number(int, low=1, high=65535), default=7860, help="port (default: 7860)"
    )
    p.add_argument("--share", action="store_true",
                   help="also open a public gradio.live link (off unless asked)")  # fmt: skip
    p.set_defaults(func=cmd_ui)
