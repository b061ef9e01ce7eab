"""Synthetic demo / benchmark data: one deterministic generator for every scale."""

from app.demo.generator import TABLES, default_max_group_size, demo_config, generate, make_delta

__all__ = ["TABLES", "default_max_group_size", "demo_config", "generate", "make_delta"]
