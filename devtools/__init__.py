"""Development tools shared by the tests, the benchmarks and the demo; never in an image.

- ``devtools.paths``: where the repository, the sample data and the full development data are.
- ``devtools.artifacts``: the offline MiniLM package, tiny model artifacts of the real format
  and the benchmarks' MiniLM artifact.
- ``devtools.processes``: free ports, the offline child environment, a real model server process.
"""
