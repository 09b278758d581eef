"""The project's tests. A regular package, not a namespace one: an installed distribution
(smdebug-rulesconfig, which the SageMaker SDK parts of the `aws` extra bring) ships a
top-level `tests` package, and a regular package anywhere on sys.path wins over a namespace
folder, so without this file `python -m tests.docker.engine` and `from tests... import`
would find that one instead."""
