"""Conformance harness: cases, references, comparison, reports."""
