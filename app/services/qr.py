"""QR codes for deep links, as SVG data URIs (scanned with a phone from the console)."""

from __future__ import annotations

import base64

import qrcode
import qrcode.image.svg


def qr_data_uri(text: str) -> str:
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    svg = image.to_string()
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode()
