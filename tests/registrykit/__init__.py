"""The real-registry test kit: distribution's registry, a token server, skopeo, access logs.

`fixtures_registry` (a pytest plugin beside this package) turns these into fixtures.
"""
