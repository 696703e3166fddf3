"""Falcon resources: small classes given their collaborators."""
