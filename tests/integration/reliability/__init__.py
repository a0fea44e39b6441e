"""Reliability suite (issue #8): the operator under injected faults and hostile input."""
