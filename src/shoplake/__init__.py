"""shoplake: an online shop's file drops in, validated and historised Delta tables and KPIs out."""

__version__ = "0.1.0"
