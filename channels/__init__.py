"""One module per provider behind one small interface (``channels.base.Channel``)."""
