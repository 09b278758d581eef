"""Development tools shared by the tests, the benchmarks and the demo; in no SageMaker image.

- ``devtools.paths``: where the repository, the sample data and the full development data are.
- ``devtools.data``: the headlines of a UCI file, as the benchmarks read them.
- ``devtools.artifacts``: the offline MiniLM package, tiny model artifacts of the real format
  and the benchmarks' MiniLM artifact.
- ``devtools.processes``: free ports, the offline child environment, a real model server (or
  any server) process and the wait for its ``/ping``.
- ``devtools.batch_transform``: what SageMaker Batch Transform sends a server for a file.
- ``devtools.local_api``: the local API Gateway + InvokeEndpoint stand-in around the real
  Lambda handler (``python -m devtools.local_api``); the compose ``tools`` image runs it, so it
  needs only that image's packages.
"""
