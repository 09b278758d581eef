"""Locust load tests for the model server, the API Gateway URL and SageMaker endpoints.

- ``loadtest.locustfile``: the three locust users (``ServerUser``, the default; ``ApiUser``;
  ``EndpointUser``) and the options they add to locust's command line.
- ``loadtest.traffic``: the request mix (headlines of the sample, singles and batches) and the
  check of each answer; plain Python, no locust.
- ``loadtest.step_shape``: the step-load shape (``--step-load``).
- ``loadtest.cli`` (``python -m loadtest``): one headless, time-bounded run with reports;
  ``loadtest.report`` reads locust's reports, ``loadtest.gate`` judges them, ``loadtest.plot``
  draws them.
"""

# Where the API key comes from (the environment rather than argv, which `ps` shows); shared
# by the command (loadtest.cli) and the locust process (loadtest.locustfile).
API_KEY_ENV = "NEWS_CLASSIFIER_API_KEY"
