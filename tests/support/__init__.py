"""Test support shared by several test modules (stubs, helpers)."""
