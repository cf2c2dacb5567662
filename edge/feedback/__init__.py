"""Visitor feedback at the edge: a bounded queue written in batches, a disk spool for outages."""
