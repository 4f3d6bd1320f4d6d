"""Desired state: manifests parsed from git commits, cached by blob id."""
